"""Tiny hand-checkable models written as CSV folders, for tests."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

TINY_SCENARIOS = {
    "horizon_months": 12,
    "forecast_method": "mean",
    "scenarios": [
        {"name": "baseline"},
        {
            "name": "both",
            "levers": [
                {"lever": "police_reports", "change": 0.2},
                {"lever": "referral_model", "value": "opt-out"},
            ],
        },
    ],
}


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def tiny_model(
    folder: Path,
    scenarios: dict[str, object] | None = None,
    crimes_a_month: int = 100,
    fte: float = 1.0,
) -> Path:
    """One area, one offence (constant history), one service of 1-month cases.

    Referrals a month by hand: police 100 x 0.5 x 0.6 = 30, contacted x 0.8 = 24;
    self 0.012 x 100,000 x (1 - 0.2) / 12 x 0.1 = 8; engaged (24 + 8) x 0.75 = 24;
    need 0.5 -> 12 referrals a month against 10 places (fte 1 x caseload 10).
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(
        folder / "areas.csv",
        ["area_code", "area_name", "adult_population"],
        [["E09000001", "Tiny", 100000]],
    )
    write_csv(folder / "offences.csv", ["offence", "offence_name"], [["R", "Rape"]])
    write_csv(
        folder / "crime.csv",
        ["area_code", "offence", "month", "count"],
        [
            ["E09000001", "R", f"{2023 + m // 12}-{m % 12 + 1:02d}", crimes_a_month]
            for m in range(24)
        ],
    )
    write_csv(
        folder / "pathway.csv",
        [
            "offence",
            "area_code",
            "report_share",
            "referral_share",
            "consent_opt_in",
            "consent_opt_out",
            "prevalence",
            "help_seeking",
            "contact_share",
            "decline_share",
            "priority_share",
        ],
        [["R", "", 0.2, 0.5, 0.6, 0.9, 0.012, 0.1, 0.8, 0.25, 0]],
    )
    write_csv(folder / "need_mix.csv", ["offence", "service", "share"], [["R", "S", 0.5]])
    write_csv(
        folder / "services.csv",
        [
            "service",
            "service_name",
            "caseload_per_fte",
            "duration_weeks",
            "duration_cv",
            "drop_out_per_month",
            "target_wait_weeks",
        ],
        [["S", "Support", 10, 52 / 12, 0, 0, 4]],
    )
    write_csv(folder / "staffing.csv", ["service", "area_code", "fte"], [["S", "E09000001", fte]])
    (folder / "scenarios.yaml").write_text(
        yaml.safe_dump(scenarios or TINY_SCENARIOS), encoding="utf-8"
    )
    return folder


def tiny_areas_model(
    folder: Path,
    ftes: list[float],
    crimes_a_month: list[int] | None = None,
    *,
    second_service_fte: list[float] | None = None,
    extra_tables: dict[str, tuple[list[str], list[list[object]]]] | None = None,
) -> Path:
    """:func:`tiny_model` with one area per entry of ``ftes`` (E09000001, E09000002, ...).

    Each area's referrals are 12 a month for 100 crimes a month (see :func:`tiny_model`),
    scaled with its crimes. With ``second_service_fte`` a second service T (the same rules,
    the same need share, so the same demand) is added. Horizon 12 months, baseline only.
    """
    tiny_model(folder, {"horizon_months": 12, "forecast_method": "mean"})
    n = len(ftes)
    crimes = crimes_a_month or [100] * n
    codes = [f"E0900000{i + 1}" for i in range(n)]
    write_csv(
        folder / "areas.csv",
        ["area_code", "area_name", "adult_population"],
        [[c, f"Area {i + 1}", 100000] for i, c in enumerate(codes)],
    )
    write_csv(
        folder / "crime.csv",
        ["area_code", "offence", "month", "count"],
        [
            [c, "R", f"{2023 + m // 12}-{m % 12 + 1:02d}", k]
            for c, k in zip(codes, crimes, strict=True)
            for m in range(24)
        ],
    )
    staffing = [["S", c, f] for c, f in zip(codes, ftes, strict=True)]
    if second_service_fte is not None:
        staffing += [["T", c, f] for c, f in zip(codes, second_service_fte, strict=True)]
        write_csv(
            folder / "need_mix.csv",
            ["offence", "service", "share"],
            [["R", "S", 0.5], ["R", "T", 0.5]],
        )
        write_csv(
            folder / "services.csv",
            [
                "service",
                "service_name",
                "caseload_per_fte",
                "duration_weeks",
                "duration_cv",
                "drop_out_per_month",
                "target_wait_weeks",
                "cost_per_fte",
            ],
            [
                ["S", "Support", 10, 52 / 12, 0, 0, 4, 40000],
                ["T", "Therapy", 5, 52 / 12, 0, 0, 4, 30000],
            ],
        )
    write_csv(folder / "staffing.csv", ["service", "area_code", "fte"], staffing)
    for name, (header, rows) in (extra_tables or {}).items():
        write_csv(folder / f"{name}.csv", header, rows)
    return folder

"""The built-in London-like example: synthetic data from published aggregates, fixed seed.

Everything about individual boroughs below is synthetic (drawn with a fixed seed); the
London-wide aggregates it is scaled to are published figures, typed in with their sources.
Sources in brackets refer to ``docs/sources.md`` (the domain brief's numbering).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

from needsled.directory import example_directory_rows
from needsled.scenarios import month_label

__all__ = ["BOROUGHS", "write_example"]

SEED = 20161128  # the date of the London Sexual Violence Needs Assessment press release

# London boroughs (City of London is policed separately) and their population in 2022,
# GLA population projections as published in the London Datastore borough population file.
BOROUGHS: tuple[tuple[str, str, int], ...] = (
    ("E09000002", "Barking and Dagenham", 224407),
    ("E09000003", "Barnet", 415041),
    ("E09000004", "Bexley", 258607),
    ("E09000005", "Brent", 348783),
    ("E09000006", "Bromley", 342548),
    ("E09000007", "Camden", 261082),
    ("E09000008", "Croydon", 406399),
    ("E09000009", "Ealing", 377916),
    ("E09000010", "Enfield", 349994),
    ("E09000011", "Greenwich", 297039),
    ("E09000012", "Hackney", 294312),
    ("E09000013", "Hammersmith and Fulham", 201406),
    ("E09000014", "Haringey", 293503),
    ("E09000015", "Harrow", 265449),
    ("E09000016", "Havering", 271368),
    ("E09000017", "Hillingdon", 322492),
    ("E09000018", "Hounslow", 289358),
    ("E09000019", "Islington", 245839),
    ("E09000020", "Kensington and Chelsea", 162446),
    ("E09000021", "Kingston upon Thames", 186434),
    ("E09000022", "Lambeth", 343982),
    ("E09000023", "Lewisham", 323421),
    ("E09000024", "Merton", 216662),
    ("E09000025", "Newham", 370004),
    ("E09000026", "Redbridge", 320018),
    ("E09000027", "Richmond upon Thames", 205051),
    ("E09000028", "Southwark", 334826),
    ("E09000029", "Sutton", 215228),
    ("E09000030", "Tower Hamlets", 334834),
    ("E09000031", "Waltham Forest", 295311),
    ("E09000032", "Wandsworth", 343147),
    ("E09000033", "Westminster", 264875),
)
ADULT_SHARE = 0.79  # share of Londoners aged 16+ (ONS mid-year estimates, about 79%)

# London-wide recorded crimes a year in the last history year (2024/25).
LONDON_CRIMES_A_YEAR = {
    "RAPE": 8_800,  # Met Police borough-level crime: London rape about 8,800 in 2024
    "OSO": 14_500,  # assumption: other sexual offences about 1.65x rape, as in the Met series
    "DA": 95_000,  # derived: 851,062 DA crimes in E&W YE Mar 2024 [S7] x London's ~11% share
}
TREND_A_YEAR = {"RAPE": 0.02, "OSO": 0.03, "DA": -0.01}  # assumption, recent direction [S13][S7]
HISTORY = (2019 * 12 + 3, 2025 * 12 + 2)  # 2019-04 .. 2025-03
# Seasonal pattern of recorded sexual offences (assumption: summer peak, winter trough).
SEASON = np.array([0.96, 0.98, 1.06, 1.08, 1.07, 1.03, 1.01, 0.98, 0.95, 0.96, 0.93, 0.99])

OFFENCES = (("RAPE", "Rape"), ("OSO", "Other sexual offences"), ("DA", "Domestic abuse"))

# (offence, report, prevalence, help_seeking, decline, priority, source); intervals below.
PATHWAY = (
    (
        "RAPE",
        (0.16, 0.14, 0.20),
        (0.004, 0.003, 0.005),
        (0.15, 0.08, 0.25),
        (0.21, 0.15, 0.30),
        0.25,
        "report [S2][S5]; prevalence 0.3-0.5% (domain 1.8); decline [S25]; help-seeking "
        "assumption (self-referrals about 1:1 with police referrals, domain 1.8)",
    ),
    (
        "OSO",
        (0.145, 0.12, 0.17),
        (0.019, 0.015, 0.025),
        (0.03, 0.015, 0.05),
        (0.25, 0.15, 0.35),
        0.15,
        "report [S5]; prevalence 2.3% all sexual assault less rape [S4]; others assumption",
    ),
    (
        "DA",
        (0.19, 0.13, 0.21),
        (0.044, 0.040, 0.050),
        (0.05, 0.02, 0.10),
        (0.21, 0.15, 0.30),
        0.30,
        "report [S9]; prevalence [S6][S8]; others assumption",
    ),
)

# service, name, type, mode, basis, caseload, sessions/FTE week, duration weeks (lo, hi), cv,
# drop-out a month, target weeks, cost per FTE, source
SERVICES = (
    (
        "ISVA",
        "Independent sexual violence advisers",
        "ISVA",
        "queue",
        "caseload",
        35,
        "",
        (78, 60, 104),
        0.6,
        0.02,
        4,
        40000,
        "caseload 35 [S35]; duration tied to court 1-2 years [S18][S19]; cost [S39]",
    ),
    (
        "COUNSELLING",
        "Specialist counselling",
        "counselling",
        "queue",
        "sessions",
        "",
        20,
        (16, 12, 24),
        0.4,
        0.04,
        12,
        45000,
        "12 sessions (6-24) [domain 2.3]; 20 client sessions per counsellor week (assumption)",
    ),
    (
        "ESS",
        "Emotional and practical support",
        "emotional support",
        "queue",
        "caseload",
        30,
        "",
        (10, 8, 12),
        0.3,
        0.05,
        2,
        36000,
        "up to 12 weeks [S23b]; caseload assumption",
    ),
    (
        "CYP_ISVA",
        "Children and young people's ISVA",
        "ISVA",
        "queue",
        "caseload",
        18,
        "",
        (52, 40, 70),
        0.6,
        0.02,
        4,
        42000,
        "young people's ISVA caseload 15-20 [S35]",
    ),
    (
        "BY_AND_FOR",
        "By-and-for service for Black and minoritised survivors",
        "by-and-for",
        "queue",
        "caseload",
        25,
        "",
        (26, 20, 36),
        0.5,
        0.03,
        6,
        38000,
        "by-and-for provision [S54]; figures assumption",
    ),
    (
        "IDVA",
        "Independent domestic violence advisers",
        "IDVA",
        "stretch",
        "caseload",
        22,
        "",
        (16, 13, 20),
        0.5,
        0.0,
        1,
        40000,
        "safe open caseload 20-25 [S31d]; 3-4 months [S32b]; cost [S39]",
    ),
)
NEED_MIX = {  # share of engaged victims needing each service (assumption unless stated)
    ("RAPE", "ISVA"): 0.70,
    ("OSO", "ISVA"): 0.25,
    ("RAPE", "COUNSELLING"): 0.50,
    ("OSO", "COUNSELLING"): 0.30,
    ("RAPE", "ESS"): 0.30,
    ("OSO", "ESS"): 0.40,
    ("DA", "ESS"): 0.05,
    ("RAPE", "CYP_ISVA"): 0.12,
    ("OSO", "CYP_ISVA"): 0.10,
    ("RAPE", "BY_AND_FOR"): 0.08,
    ("OSO", "BY_AND_FOR"): 0.06,
    ("DA", "BY_AND_FOR"): 0.02,
    ("DA", "IDVA"): 0.35,
}
# How well staffed each service is against its demand at the start (1 = just enough), and the
# starting waiting list in months of demand with the average time already waited.
STAFFING = {
    "ISVA": (0.92, 1.0, 3),
    "COUNSELLING": (0.85, 6.0, 26),
    "ESS": (1.05, 0.3, 1),
    "CYP_ISVA": (0.95, 1.0, 4),
    "BY_AND_FOR": (0.80, 2.0, 8),
    "IDVA": (0.90, 0.0, 0),
}

SCENARIOS = {
    "title": "London example (synthetic)",
    "horizon_months": 60,
    "scenarios": [
        {"name": "baseline", "description": "Today's services and trends carry on"},
        {
            "name": "reports-up-20pc",
            "description": "Police reports up 20%, ramped over two years",
            "levers": [
                {
                    "lever": "police_reports",
                    "change": 0.20,
                    "interval": [0.10, 0.30],
                    "profile": "ramp",
                    "ramp_months": 24,
                }
            ],
        },
        {
            "name": "opt-out-referral",
            "description": "Automatic (opt-out) police referral for sexual offences",
            "levers": [
                {"lever": "referral_model", "value": "opt-out", "offences": ["RAPE", "OSO"]}
            ],
        },
        {
            "name": "court-delays",
            "description": "Court backlogs keep ISVA cases open 25% longer, over a year",
            "levers": [
                {
                    "lever": "support_duration",
                    "change": 0.25,
                    "interval": [0.10, 0.40],
                    "profile": "ramp",
                    "ramp_months": 12,
                    "services": ["ISVA", "CYP_ISVA"],
                }
            ],
        },
    ],
}


# Ways of buying extra capacity, for the optimiser (synthetic example figures: assumptions).
OPTIONS: tuple[tuple[str, str, str, float, float, int], ...] = (
    ("COUNSELLING_GROUP", "COUNSELLING", "Group counselling (8 people, all year)", 8, 12000, 2),
    ("ESS_ONLINE", "ESS", "Online and phone emotional support", 20, 18000, 2),
    (
        "BY_AND_FOR_GRANT",
        "BY_AND_FOR",
        "By-and-for community grant (worker and volunteers)",
        12,
        15000,
        1,
    ),
)
# Services bought together in one contract (the sexual violence advocacy lot).
LOTS = (
    ("SV_ADVOCACY", "ISVA", "Sexual violence advocacy"),
    ("SV_ADVOCACY", "CYP_ISVA", "Sexual violence advocacy"),
)
# Estimated victims by group, with synthetic service-user and consultation counts.
SA_SOURCE = "sexual assault, CSEW YE Mar 2022: 798,000 women, 275,000 men [S4]"
GROUPS: tuple[tuple[str, str, float, int, int, str], ...] = (
    ("sex", "female", 0.744, 1840, 104, SA_SOURCE),
    ("sex", "male", 0.256, 310, 14, SA_SOURCE),
    (
        "ethnicity",
        "Asian",
        0.207,
        260,
        9,
        "London population, Census 2021 (assumption: victims "
        "in proportion); users and sample synthetic",
    ),
    ("ethnicity", "Black", 0.135, 330, 16, "as above"),
    ("ethnicity", "Mixed", 0.057, 140, 4, "as above"),
    ("ethnicity", "White", 0.538, 1330, 84, "as above"),
    ("ethnicity", "Other", 0.063, 90, 3, "as above"),
    (
        "disability",
        "disabled",
        0.42,
        610,
        31,
        "disabled women 17.5% vs 6.7% [S55], with 22% of adults disabled (assumption)",
    ),
    ("disability", "not disabled", 0.58, 1540, 85, "as above"),
)


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_example(folder: str | Path) -> Path:
    """Write the example model (CSV tables and scenarios.yaml) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    adults = np.array([round(p * ADULT_SHARE, -2) for _, _, p in BOROUGHS])
    _write(
        folder / "areas.csv",
        ["area_code", "area_name", "adult_population"],
        [[c, n, int(a)] for (c, n, _), a in zip(BOROUGHS, adults, strict=True)],
    )
    _write(folder / "offences.csv", ["offence", "offence_name"], [list(o) for o in OFFENCES])
    crime_rows, recent = _crime(rng, adults)
    _write(folder / "crime.csv", ["area_code", "offence", "month", "count"], crime_rows)
    _write(
        folder / "pathway.csv",
        [
            "offence",
            "area_code",
            "report_share",
            "report_share_lo",
            "report_share_hi",
            "prevalence",
            "prevalence_lo",
            "prevalence_hi",
            "help_seeking",
            "help_seeking_lo",
            "help_seeking_hi",
            "decline_share",
            "decline_share_lo",
            "decline_share_hi",
            "priority_share",
            "referral_model",
            "consent_opt_in",
            "consent_opt_in_lo",
            "consent_opt_in_hi",
            "source",
        ],
        [
            [o, "", *rep, *prev, *hs, *dec, pr, "opt-in", 0.55, 0.40, 0.70, src]
            for o, rep, prev, hs, dec, pr, src in PATHWAY
        ],
    )
    _write(
        folder / "need_mix.csv",
        ["offence", "service", "share", "source"],
        [[o, s, v, "assumption"] for (o, s), v in NEED_MIX.items()],
    )
    _write(
        folder / "services.csv",
        [
            "service",
            "service_name",
            "service_type",
            "mode",
            "capacity_basis",
            "caseload_per_fte",
            "sessions_per_fte_week",
            "duration_weeks",
            "duration_weeks_lo",
            "duration_weeks_hi",
            "duration_cv",
            "drop_out_per_month",
            "target_wait_weeks",
            "cost_per_fte",
            "source",
        ],
        [
            [s, n, t, m, b, c, sp, *d, cv, dr, tw, cost, src]
            for s, n, t, m, b, c, sp, d, cv, dr, tw, cost, src in SERVICES
        ],
    )
    _write(
        folder / "staffing.csv",
        ["service", "area_code", "fte", "waiting_start", "waiting_start_mean_weeks", "open_start"],
        _staffing(rng, adults, recent),
    )
    _write(folder / "directory.csv", *example_directory_rows([c for c, _, _ in BOROUGHS]))
    _write(
        folder / "options.csv",
        [
            "option",
            "service",
            "option_name",
            "places_per_unit",
            "cost_per_unit",
            "max_units",
            "source",
        ],
        [[*o, "assumption (synthetic example)"] for o in OPTIONS],
    )
    _write(folder / "lots.csv", ["lot", "service", "lot_name"], [list(x) for x in LOTS])
    _write(
        folder / "groups.csv",
        ["dimension", "group", "victim_share", "users", "sample", "source"],
        [list(g) for g in GROUPS],
    )
    (folder / "scenarios.yaml").write_text(
        "# Scenarios for the built-in example (see docs/reference.md)\n"
        + yaml.safe_dump(SCENARIOS, sort_keys=False),
        encoding="utf-8",
    )
    return folder


def _crime(
    rng: np.random.Generator, adults: np.ndarray
) -> tuple[list[list[object]], dict[str, np.ndarray]]:
    """Monthly counts per borough: London total x population share x synthetic variation."""
    months = np.arange(HISTORY[0], HISTORY[1] + 1)
    years_back = (months - months[-1]) / 12.0
    rows: list[list[object]] = []
    recent: dict[str, np.ndarray] = {}
    for off, _ in OFFENCES:
        share = adults * rng.lognormal(0.0, 0.25, len(adults))
        share /= share.sum()
        level = LONDON_CRIMES_A_YEAR[off] / 12.0 * (1 + TREND_A_YEAR[off]) ** years_back
        lam = share[:, None] * level[None, :] * SEASON[months % 12][None, :]
        counts = rng.poisson(lam)
        recent[off] = lam[:, -12:].mean(axis=1)
        for a, (code, _, _) in enumerate(BOROUGHS):
            rows += [
                [code, off, month_label(int(m)), int(c)]
                for m, c in zip(months, counts[a], strict=True)
            ]
    return rows, recent


def _staffing(
    rng: np.random.Generator, adults: np.ndarray, crimes: dict[str, np.ndarray]
) -> list[list[object]]:
    """FTE near each borough's expected demand, with a synthetic postcode lottery."""
    rows: list[list[object]] = []
    pw = {p[0]: p for p in PATHWAY}
    engaged = {}
    for off, _ in OFFENCES:
        _, rep, prev, hs, dec, _, _ = pw[off]
        police = crimes[off] * 0.76 * 0.55 * 0.76
        self_ref = prev[0] * adults * (1 - rep[0]) / 12 * hs[0]
        engaged[off] = (police + self_ref) * (1 - dec[0])
    for s, _, _, _, basis, caseload, sessions, dur, _, _, _, _, _ in SERVICES:
        demand = sum(engaged[o] * NEED_MIX.get((o, s), 0.0) for o, _ in OFFENCES)
        places_per_fte = float(sessions if basis == "sessions" else caseload)
        needed = demand * dur[0] / (52 / 12) / places_per_fte
        cover, months_waiting, waited = STAFFING[s]
        fte = np.round(needed * cover * rng.lognormal(0.0, 0.15, len(adults)), 1)
        fte = np.maximum(fte, 0.2)
        waiting = np.round(demand * months_waiting * rng.lognormal(0.0, 0.3, len(adults)))
        open_cases = np.floor(fte * places_per_fte * 0.97)
        rows += [
            [s, code, f, int(w), waited, int(o)]
            for (code, _, _), f, w, o in zip(BOROUGHS, fte, waiting, open_cases, strict=True)
        ]
    return rows

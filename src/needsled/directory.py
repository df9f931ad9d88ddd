"""The directory of services: who delivers what, where, for whom, and the wait today.

An :class:`Entry` is one provider's service: the ``directory`` table's row, filled out from the
model (the service's name and type from ``services``, its areas from ``staffing`` when the row
leaves ``areas`` blank, its offences from ``need_mix`` when it leaves ``offences`` blank), and,
when provider returns are given, the expected wait for a new referral in each area it covers.
A service with no directory row is listed too, without provider details.

The expected wait comes from the latest quarterly return by Little's law (``L = λW``):

    wait_weeks = waiting list at quarter end / starts per week in that quarter

It assumes the list was roughly steady over the quarter and is seen in order; priority
referrals wait less and others more, and because people who leave the list without being seen
are not counted as leaving it, the estimate errs long. The counts behind it are never shown,
and a wait resting on fewer than 5 starts or fewer than 5 people waiting is not given as a
number (model.md section 8).

Nothing here reads or writes files: ``needsled.io.directory_out`` writes the open-data export.
"""

from __future__ import annotations

import calendar
import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from needsled.errors import Problem, column_letter
from needsled.privacy import THRESHOLD
from needsled.returns.format import quarter_months
from needsled.schema import tables

if TYPE_CHECKING:
    from needsled.io.read import RawTable
    from needsled.model import Model

__all__ = [
    "NO_RETURN",
    "Directory",
    "Entry",
    "Hit",
    "Wait",
    "build_directory",
    "check_directory",
    "example_directory_rows",
    "expected_waits",
    "newest_quarter",
    "uk_phone",
    "valid_email",
    "valid_website",
]

NO_RETURN = "no recent return"
# A wait is "recent" when its quarter is one of this many newest quarters in the returns given
# (the newest, or the one before for a provider whose return is a quarter late).
RECENT_QUARTERS = 2
QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")
_GSS = re.compile(r"^[EWSNK][0-9]{8}$")
_SPLIT = re.compile(r"[\s,;]+")
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_HOST = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_STOPWORDS = frozenset({"a", "an", "and", "the", "for", "of", "to", "in", "with", "or", "on"})


def split_codes(text: object) -> tuple[str, ...]:
    """Codes typed into one cell, separated by spaces, commas or semicolons."""
    return tuple(t for t in _SPLIT.split(str(text or "").strip()) if t)


def split_list(text: object) -> tuple[str, ...]:
    """Items typed into one cell, separated by commas or semicolons (names keep their spaces)."""
    return tuple(t.strip() for t in re.split(r"[,;]", str(text or "")) if t.strip())


# ---------------------------------------------------------------- contact details


def uk_phone(text: str) -> bool:
    """Whether ``text`` is a UK phone number: 0 and 9 or 10 more digits, +44, or 116 xxx.

    Spaces, hyphens, dots and brackets are ignored; +44 and 0044 stand for the leading 0 (an
    optional "(0)" after +44 too). Numbers starting 01 have 10 or 11 digits, those starting
    02, 03, 05, 07, 08 or 09 have 11 (0800 freephone also 10); 116 xxx are the European
    helplines. Ofcom's numbers for drama (020 7946 0000 to 0999, 07700 900000 to 900999) pass.
    """
    digits = re.sub(r"[\s\-.()]", "", text)
    for prefix in ("+440", "+44", "00440", "0044"):
        if digits.startswith(prefix):
            digits = "0" + digits[len(prefix) :]
            break
    if re.fullmatch(r"116[0-9]{3}", digits):
        return True
    if not re.fullmatch(r"0[0-9]+", digits):
        return False
    lengths = {"1": (10, 11), "2": (11,), "3": (11,), "5": (11,), "7": (11,), "9": (11,)}
    allowed = (10, 11) if digits.startswith("0800") else lengths.get(digits[1:2], (11,))
    return digits[1:2] in "1235789" and len(digits) in allowed


def valid_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None


def valid_website(text: str) -> bool:
    """An http(s) address with a host name, e.g. https://www.example.org/referrals."""
    m = re.fullmatch(r"https?://([^/?#:\s]+)(:[0-9]{1,5})?([/?#]\S*)?", text, flags=re.IGNORECASE)
    return m is not None and _HOST.fullmatch(m.group(1)) is not None


# ---------------------------------------------------------------- validation


def _problem(
    raw: RawTable, message: str, fix: str, row: int | None, column: str, value: str
) -> Problem:
    cell = None
    if raw.sheet is not None and column in raw.header and row is not None:
        cell = f"{column_letter(raw.header.index(column))}{row}"
    return Problem(
        file=raw.file,
        sheet=raw.sheet,
        row=row,
        column=column,
        value=value,
        message=message,
        fix=fix,
        cell=cell,
    )


def _hint(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_directory(
    frames: Mapping[str, pd.DataFrame], raws: Mapping[str, RawTable]
) -> list[Problem]:
    """The directory's own rules, beyond the generic cell, key and reference checks.

    Area codes in ``areas`` must be GSS codes in the areas table where that service has a
    staffing row; offence codes in ``offences`` must be in the offences table; ``email``,
    ``website`` and ``phone`` must look like an email address, a web address and a UK phone
    number. Only call it once every table parsed without problems.
    """
    if "directory" not in frames:
        return []
    raw = raws["directory"]
    areas = set(frames["areas"]["area_code"])
    offences = set(frames["offences"]["offence"])
    staffing = frames["staffing"]
    served = set(zip(staffing["service"], staffing["area_code"], strict=True))
    with_staff = set(staffing["service"])
    services = set(frames["services"]["service"])
    out: list[Problem] = []
    for rec in frames["directory"].to_dict("records"):
        row, service = int(rec["_row"]), str(rec["service"])
        if service in services:
            out += _area_problems(raw, row, service, rec["areas"], areas, served, with_staff)
        for code in split_codes(rec["offences"]):
            if code not in offences:
                out.append(
                    _problem(
                        raw,
                        "lists an offence that is not in the offences table",
                        f"use offence codes from the offences table{_hint(code, offences)}, "
                        "separated by spaces or commas, or leave it blank for every offence "
                        f"the need_mix table sends to {service}",
                        row,
                        "offences",
                        code,
                    )
                )
        out += _contact_problems(raw, row, rec)
    return out


def _area_problems(
    raw: RawTable,
    row: int,
    service: str,
    cell: object,
    areas: set[str],
    served: set[tuple[str, str]],
    with_staff: set[str],
) -> list[Problem]:
    out: list[Problem] = []
    codes = split_codes(cell)
    if not codes and service not in with_staff:
        out.append(
            _problem(
                raw,
                f"covers no area: service {service} has no staffing row, and a blank areas "
                "cell means every area the service serves",
                f"add staffing rows for {service} in the areas it serves",
                row,
                "areas",
                "",
            )
        )
    for token in codes:
        code = token.upper()
        if not _GSS.match(code):
            message, fix = (
                "lists something that is not a GSS area code",
                "write GSS codes such as E09000001, separated by spaces or commas, or leave "
                f"it blank for every area {service} serves",
            )
        elif code not in areas:
            message, fix = (
                "lists an area that is not in the areas table",
                f"use area codes from the areas table{_hint(code, areas)}",
            )
        elif (service, code) not in served:
            message, fix = (
                f"lists an area where service {service} has no staffing row",
                f"add a staffing row for {service} in {code}, or remove {code} from areas "
                "(a provider can only cover areas the model's service serves)",
            )
        else:
            continue
        out.append(_problem(raw, message, fix, row, "areas", token))
    return out


def _contact_problems(raw: RawTable, row: int, rec: Mapping[Any, object]) -> list[Problem]:
    public = " (an organisation's public contact for referrals, never a member of staff's own)"
    out: list[Problem] = []
    email = str(rec["email"] or "")
    if email and not valid_email(email):
        fix = (
            "remove 'mailto:' and give the address alone, e.g. referrals@example.org"
            if email.lower().startswith("mailto:")
            else "write one email address such as referrals@example.org"
        )
        out.append(_problem(raw, "is not an email address", fix + public, row, "email", email))
    site = str(rec["website"] or "")
    if site and not valid_website(site):
        fix = (
            f"write the full address, starting https:// (https://{site})"
            if "://" not in site and _HOST.fullmatch(site.split("/")[0])
            else "write the full web address, e.g. https://www.example.org/referrals"
        )
        out.append(_problem(raw, "is not a web address", fix, row, "website", site))
    phone = str(rec["phone"] or "")
    if phone and not uk_phone(phone):
        out.append(
            _problem(
                raw,
                "is not a UK phone number",
                "write one number with its area code, e.g. 020 7946 0000 or +44 20 7946 0000"
                + public,
                row,
                "phone",
                phone,
            )
        )
    return out


# ---------------------------------------------------------------- expected waits


@dataclass(frozen=True)
class Wait:
    """The expected wait for a new referral to one provider's service in one area.

    ``weeks`` is the rounded estimate (0 = no waiting list) or None when none can be given;
    ``note`` says it in plain words, with the quarter it comes from.
    """

    weeks: float | None
    quarter: str | None
    note: str


def quarter_index(quarter: str) -> int:
    m = QUARTER.match(quarter)
    if m is None:
        raise ValueError(f"{quarter!r} is not a quarter written YYYY-Qn")
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def weeks_in_quarter(quarter: str) -> float:
    """Days in the calendar quarter / 7 (12.86 to 13.0 weeks)."""
    days = 0
    for month in quarter_months(quarter):
        days += calendar.monthrange(int(month[:4]), int(month[5:]))[1]
    return days / 7.0


def _wait(waiting: float, starts: float, quarter: str) -> Wait:
    end = f"the end of {quarter}"
    if waiting == 0:
        return Wait(0.0, quarter, f"no waiting list at {end}")
    if 0 < starts < THRESHOLD:
        return Wait(None, quarter, f"too few starts in {quarter} to estimate a wait")
    if 0 < waiting < THRESHOLD:
        return Wait(None, quarter, f"fewer than {THRESHOLD} waiting at {end}")
    if starts == 0:
        return Wait(None, quarter, f"no one started support in {quarter}: no estimate")
    weeks = waiting / (starts / weeks_in_quarter(quarter))
    if weeks < 1:  # at least 0.1: a wait of 0 means no waiting list
        return Wait(max(round(weeks, 1), 0.1), quarter, f"under a week (from the {quarter} return)")
    n = round(weeks)
    return Wait(float(n), quarter, f"about {n} week{'s' if n != 1 else ''} ({quarter} return)")


def _wait_rows(returns: pd.DataFrame) -> pd.DataFrame:
    """The rows of the measures an expected wait uses (the rest of a return is not needed)."""
    return returns[returns["measure"].isin(("starts", "waiting_end", "waiting_band"))]


def newest_quarter(returns: pd.DataFrame) -> str | None:
    """The newest quarter with a waiting list or starts in the returns (None if none)."""
    quarters = [str(q) for q in _wait_rows(returns)["quarter"]]
    return max(quarters, key=quarter_index) if quarters else None


def expected_waits(returns: pd.DataFrame) -> dict[tuple[str, str, str], Wait]:
    """The expected wait for each (provider, service, area) in the returns.

    ``returns`` is the tidy return table (``needsled.returns.format.COLUMNS``). The waiting list
    is ``waiting_end`` (or, where a return gives only the bands, the sum of ``waiting_band``);
    the quarter used is the latest with both a waiting list and ``starts``. A quarter older
    than the :data:`RECENT_QUARTERS` newest quarters of all the returns gives "no recent
    return".
    """
    data = _wait_rows(returns)
    if data.empty:
        return {}
    keys = ["provider", "service", "area", "quarter"]
    totals = (
        data.assign(value=pd.to_numeric(data["value"]).astype(np.float64))
        .groupby([*keys, "measure"], sort=True)["value"]
        .sum()
        .unstack("measure")
        .reindex(columns=["starts", "waiting_end", "waiting_band"])
    )
    totals["waiting"] = totals["waiting_end"].fillna(totals["waiting_band"])
    usable = totals.dropna(subset=["starts", "waiting"]).reset_index()
    newest = max(quarter_index(str(q)) for q in data["quarter"])
    out: dict[tuple[str, str, str], Wait] = {}
    for rec in usable.to_dict("records"):  # sorted by quarter: the latest comes last
        quarter = str(rec["quarter"])
        key = (str(rec["provider"]), str(rec["service"]), str(rec["area"]))
        if newest - quarter_index(quarter) >= RECENT_QUARTERS:
            out[key] = Wait(None, quarter, f"{NO_RETURN} (the latest is for {quarter})")
        else:
            out[key] = _wait(float(rec["waiting"]), float(rec["starts"]), quarter)
    return out


def summarise_waits(waits: Sequence[Wait]) -> str:
    """One line for several areas: the range of known waits, and how many areas have none."""
    if len(waits) == 1:
        return waits[0].note
    known = [w.weeks for w in waits if w.weeks is not None]
    if not known:
        notes = {w.note for w in waits}
        return notes.pop() if len(notes) == 1 else f"no estimate in these {len(waits)} areas"
    lo, hi = min(known), max(known)
    quarters = sorted({w.quarter for w in waits if w.weeks is not None and w.quarter})
    span = f"{lo:g} weeks" if lo == hi else f"{lo:g}-{hi:g} weeks"
    text = f"{span} in {len(known)} of {len(waits)} areas ({', '.join(quarters)})"
    missing = len(waits) - len(known)
    return text + (f"; no estimate in {missing}" if missing else "")


# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One provider's service in the directory (text fields are "" when not given)."""

    service: str
    service_name: str
    service_type: str
    provider: str
    provider_name: str
    description: str
    areas: tuple[str, ...]
    area_names: tuple[str, ...]
    offences: tuple[str, ...]
    offence_names: tuple[str, ...]
    eligibility: str = ""
    languages: tuple[str, ...] = ()
    by_and_for: str = ""
    accessibility: str = ""
    delivery: str = ""
    opening_hours: str = ""
    how_to_refer: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""
    target_wait_weeks: float = math.nan
    waits: Mapping[str, Wait] = field(default_factory=lambda: MappingProxyType({}))

    def wait(self, area: str) -> Wait:
        return self.waits.get(area, Wait(None, None, NO_RETURN))


@dataclass(frozen=True)
class Hit:
    """A search result: the entry, the areas the search was about, and why it ranks there."""

    entry: Entry
    areas: tuple[str, ...]
    score: float

    @property
    def wait(self) -> str:
        return summarise_waits([self.entry.wait(a) for a in self.areas])

    @property
    def shortest_wait_weeks(self) -> float:
        known = [w.weeks for a in self.areas if (w := self.entry.wait(a)).weeks is not None]
        return min(known) if known else math.inf


def _norm(text: str) -> str:
    return " ".join(re.sub(r"&", " and ", text.casefold()).split())


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[0-9a-z]+", text.casefold()) if w not in _STOPWORDS]


def _match(query: str, codes: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """Codes matching a code or name exactly (case-insensitive), else names containing it."""
    q = _norm(query)
    exact = tuple(c for c, n in zip(codes, names, strict=True) if q in (_norm(c), _norm(n)))
    if exact or not q:
        return exact
    return tuple(c for c, n in zip(codes, names, strict=True) if q in _norm(n))


@dataclass(frozen=True)
class Directory:
    """Every entry, and the model's areas and offences that searches are matched against."""

    entries: tuple[Entry, ...]
    area_codes: tuple[str, ...]
    area_names: tuple[str, ...]
    offence_codes: tuple[str, ...]
    offence_names: tuple[str, ...]
    newest_return: str | None = None

    def match_areas(self, query: str) -> tuple[str, ...]:
        return _match(query, self.area_codes, self.area_names)

    def match_offences(self, query: str) -> tuple[str, ...]:
        return _match(query, self.offence_codes, self.offence_names)

    def suggest_area(self, query: str) -> str | None:
        close = difflib.get_close_matches(query.title(), self.area_names, n=1, cutoff=0.6)
        return close[0] if close else None

    def search(
        self, area: str | None = None, offence: str | None = None, need: str | None = None
    ) -> list[Hit]:
        """Entries serving the area and offence (code or name), ranked for the need.

        Area and offence are filters. Every word of ``need`` must appear (as a word or the
        start of one) in the entry's type, name, provider, description, by-and-for communities,
        eligibility, languages or delivery. Each word scores where it appears (service type,
        name or provider 3, by-and-for communities 2, anywhere else 1), and 4 more when the
        whole need is the service type. Ties go to the shortest known wait in the areas
        searched (no estimate last), then to the provider's name.
        """
        areas = self.match_areas(area) if area else None
        offences = set(self.match_offences(offence)) if offence else None
        hits = []
        for entry in self.entries:
            where = entry.areas if areas is None else tuple(a for a in areas if a in entry.areas)
            if not where or (offences is not None and not offences & set(entry.offences)):
                continue
            score = _need_score(entry, need) if need else 0.0
            if score is not None:
                hits.append(Hit(entry, where, score))
        return sorted(
            hits,
            key=lambda h: (
                -h.score,
                h.shortest_wait_weeks,
                h.entry.provider_name.casefold(),
                h.entry.service_name.casefold(),
            ),
        )


def _need_score(entry: Entry, need: str) -> float | None:
    words = _words(need)
    fields = (
        (3.0, f"{entry.service_name} {entry.provider_name} {entry.service_type}"),
        (2.0, entry.by_and_for),
        (1.0, f"{entry.description} {entry.eligibility} {' '.join(entry.languages)}"),
        (1.0, entry.delivery),
    )
    tokens = [(w, _words(text)) for w, text in fields]
    score = 0.0
    for word in words:
        found = [w for w, toks in tokens if any(t.startswith(word) for t in toks)]
        if not found:
            return None
        score += sum(found)
    same_type = re.sub(r"[^0-9a-z]", "", need.casefold())
    if same_type and same_type == re.sub(r"[^0-9a-z]", "", entry.service_type.casefold()):
        score += 4.0
    return score


def build_directory(model: Model, returns: pd.DataFrame | None = None) -> Directory:
    """The model's directory: one entry per ``directory`` row, then one per service left out.

    ``returns`` (the tidy return table) adds the expected wait per provider, service and area;
    without it every wait is "no recent return".
    """
    waits = expected_waits(returns) if returns is not None else {}
    svc = model.services
    s_idx = {c: i for i, c in enumerate(svc.codes)}
    area_name = dict(zip(model.area_codes, model.area_names, strict=True))
    offence_name = dict(zip(model.offence_codes, model.offence_names, strict=True))
    served = {
        s: tuple(
            a for a, ok in zip(model.area_codes, model.staffing.served[:, i], strict=True) if ok
        )
        for s, i in s_idx.items()
    }
    mixed = {
        s: tuple(
            o for o, m in zip(model.offence_codes, model.need_mix.value[:, i], strict=True) if m > 0
        )
        for s, i in s_idx.items()
    }
    frame = model.tables.get("directory")
    rows = [] if frame is None else frame.to_dict("records")
    listed = {str(r["service"]) for r in rows}
    rows += [{"service": s} for s in svc.codes if s not in listed]
    entries = []
    for rec in rows:
        s = str(rec["service"])
        text = {k: "" if v is None or v != v else str(v) for k, v in rec.items()}
        areas = tuple(c.upper() for c in split_codes(text.get("areas"))) or served[s]
        offences = split_codes(text.get("offences")) or mixed[s]
        provider = text.get("provider", "")
        entries.append(
            Entry(
                service=s,
                service_name=svc.names[s_idx[s]],
                service_type=svc.types[s_idx[s]],
                provider=provider,
                provider_name=text.get("provider_name", ""),
                description=text.get("description", ""),
                areas=areas,
                area_names=tuple(area_name.get(a, a) for a in areas),
                offences=offences,
                offence_names=tuple(offence_name.get(o, o) for o in offences),
                eligibility=text.get("eligibility", ""),
                languages=split_list(text.get("languages")),
                by_and_for=text.get("by_and_for", ""),
                accessibility=text.get("accessibility", ""),
                delivery=text.get("delivery", ""),
                opening_hours=text.get("opening_hours", ""),
                how_to_refer=text.get("how_to_refer", ""),
                phone=text.get("phone", ""),
                email=text.get("email", ""),
                website=text.get("website", ""),
                target_wait_weeks=float(svc.target_wait_weeks[s_idx[s]]),
                waits=MappingProxyType(
                    {a: waits[(provider, s, a)] for a in areas if (provider, s, a) in waits}
                ),
            )
        )
    return Directory(
        entries=tuple(entries),
        area_codes=model.area_codes,
        area_names=model.area_names,
        offence_codes=model.offence_codes,
        offence_names=model.offence_names,
        newest_return=None if returns is None else newest_quarter(returns),
    )


# ---------------------------------------------------------------- the built-in example

# London boroughs mostly south of the Thames (the example's two Rape Crisis centres split here)
_SOUTH = frozenset(f"E090000{n:02d}" for n in (4, 6, 8, 11, 21, 22, 23, 24, 27, 28, 29, 32))
_SELF = "Self-referral by phone, email or online form; police and professionals refer by email"
# service, provider, areas (north, south or all), offences (blank: from need_mix), languages,
# by and for, delivery, opening hours, phone (the last digits of 020 7946 0xxx)
_EXAMPLE = (
    ("ISVA", "RC-NORTH", "north", "RAPE OSO", "English", "", "both", "Mon-Fri 09:00-17:00", "0101"),
    ("COUNSELLING", "RC-NORTH", "north", "RAPE OSO", "English", "", "both",
     "Mon-Thu 09:00-20:00; Fri 09:00-17:00", "0102"),
    ("ISVA", "RC-SOUTH", "south", "RAPE OSO", "English, Polish, Portuguese", "", "both",
     "Mon-Fri 09:30-17:30", "0201"),
    ("COUNSELLING", "RC-SOUTH", "south", "RAPE OSO", "English, Polish, Portuguese", "",
     "in person", "Mon-Fri 10:00-18:00; Sat 10:00-13:00", "0202"),
    ("ESS", "VS-LONDON", "all", "", "English, Bengali, Turkish, Somali", "", "online",
     "Mon-Fri 08:00-20:00; Sat-Sun 09:00-17:00", "0301"),
    ("CYP_ISVA", "YP-ADVOCACY", "all", "RAPE OSO", "English", "", "both",
     "Weekdays 09:00-17:00, evenings by appointment", "0401"),
    ("BY_AND_FOR", "BME-WOMEN", "all", "", "English, Arabic, Bengali, Punjabi, Somali, Urdu",
     "Black and minoritised women and girls", "both", "Mon-Fri 10:00-18:00", "0501"),
    ("IDVA", "DA-ADVOCACY", "all", "DA", "English, Polish, Romanian", "", "both",
     "Mon-Sun 08:00-20:00", "0601"),
)  # fmt: skip
_PROVIDERS = {
    "RC-NORTH": ("Example Rape Crisis Centre North London (synthetic)", "rc-north"),
    "RC-SOUTH": ("Example Rape Crisis Centre South London (synthetic)", "rc-south"),
    "VS-LONDON": ("Example Victim Support London (synthetic)", "vs-london"),
    "YP-ADVOCACY": ("Example Young People's Advocacy Service (synthetic)", "yp-advocacy"),
    "BME-WOMEN": ("Example Black and Minoritised Women's Centre (synthetic)", "bme-women"),
    "DA-ADVOCACY": ("Example Domestic Abuse Advocacy Partnership (synthetic)", "da-advocacy"),
}
_ABOUT = {
    "ISVA": ("Independent sexual violence advisers: practical and emotional support through "
             "the police and court process, for as long as it takes",
             "Anyone aged 18 or over who has been raped or sexually abused, at any time"),
    "COUNSELLING": ("Up to 12 sessions of specialist trauma counselling, one to one",
                    "Anyone aged 16 or over who has been raped or sexually abused, at any time"),
    "ESS": ("Emotional and practical support by phone and video for up to 12 weeks",
            "Anyone aged 18 or over affected by a sexual offence or domestic abuse"),
    "CYP_ISVA": ("Advocacy for children and young people after sexual violence, and support "
                 "for their parents or carers", "Children and young people aged 13 to 17"),
    "BY_AND_FOR": ("Support and advocacy by and for Black and minoritised survivors, in "
                   "community languages", "Women and girls aged 13 or over"),
    "IDVA": ("Independent domestic violence advisers for people at high risk of serious harm",
             "Anyone aged 16 or over at high risk from a partner, ex-partner or family member"),
}  # fmt: skip
_ACCESS = "Step-free access; hearing loop; BSL interpreters on request"


def example_directory_rows(area_codes: Sequence[str]) -> tuple[list[str], list[list[object]]]:
    """A synthetic directory (header and rows) for the built-in example's services.

    Providers are invented and say so in their names; contacts are on the reserved example.org
    domain and Ofcom's drama range 020 7946 0000 to 0999. Rows list only ``area_codes`` (a row
    whose areas all fall outside them is left out), so a cut-down example stays valid.
    """
    given = list(area_codes)
    header = list(tables()["directory"].names)
    rows: list[list[object]] = []
    for service, provider, part, offences, langs, by_for, delivery, hours, line in _EXAMPLE:
        name, domain = _PROVIDERS[provider]
        if part == "all":
            areas = ""
        else:
            keep = [c for c in given if (c in _SOUTH) == (part == "south")]
            if not keep:
                continue
            areas = " ".join(keep)
        description, eligibility = _ABOUT[service]
        access = "Women-only space; step-free access; interpreters" if by_for else _ACCESS
        row = {
            "service": service,
            "provider": provider,
            "provider_name": name,
            "areas": areas,
            "description": description,
            "offences": offences,
            "eligibility": eligibility,
            "languages": langs,
            "by_and_for": by_for,
            "accessibility": access,
            "delivery": delivery,
            "opening_hours": hours,
            "how_to_refer": _SELF,
            "phone": f"020 7946 {line}",
            "email": f"referrals@{domain}.example.org",
            "website": f"https://{domain}.example.org/{service.lower().replace('_', '-')}",
        }
        rows.append([row[c] for c in header])
    return header, rows

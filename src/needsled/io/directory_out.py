"""The directory as open data: HSDS 3.0 (Open Referral UK) JSON and tabular CSV files.

``write_hsds(directory, folder)`` writes

- ``services.json``: every service fully nested (organization, phones, contacts, schedules,
  service areas, languages, locations with accessibility, attributes), as the HSDS API's
  ``/services/{id}`` returns one;
- ``organizations.json``: every organization with its locations and its services (list form);
- ``csv/<table>.csv``: the same records in the HSDS tabular format, one file per table, named
  and with the columns of the HSDS schema (blank where not known).

Ids are UUID 5 from the provider, service, area and other codes, so exporting the same
directory twice gives the same ids and the same files. The expected wait in each area is an
attribute of that service area (see ``docs/directory.md``). Only entries with a provider are
exported; a service without a directory row has no organization to publish under.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from needsled.directory import Directory, Entry, valid_website

__all__ = [
    "HSDS_TABLES",
    "NAMESPACE",
    "exportable",
    "hsds_organizations",
    "hsds_services",
    "hsds_tables",
    "parse_opening_hours",
    "stable_id",
    "write_hsds",
]

Row = dict[str, Any]

# The namespace of every id the export writes; an id is uuid5(NAMESPACE, the JSON array of its
# parts), e.g. ["service", "RC-NORTH", "ISVA"], so anyone can work it out again.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:needsled:hsds")
AREA_URI = "http://statistics.data.gov.uk/id/statistical-geography/{}"  # ONS linked data
LOCAL_TIME = "Times are UK local time (GMT, or BST in summer)."
NOT_PUBLISHED = (
    "In person in the areas served. The address is given on referral and is not published, "
    "for the safety of those who use the service."
)

# Each HSDS table the export fills: its CSV file and its columns (the one-to-one fields of the
# HSDS 3.0 schema, in the schema's order).
HSDS_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    name: (path, tuple(columns.split()))
    for name, path, columns in (
        (
            "organization",
            "organizations.csv",
            "id name alternate_name description email website tax_status tax_id "
            "year_incorporated legal_status logo uri parent_organization_id",
        ),
        (
            "service",
            "services.csv",
            "id organization_id program_id name alternate_name description url email status "
            "interpretation_services application_process fees_description wait_time fees "
            "accreditations eligibility_description minimum_age maximum_age assured_date "
            "assurer_email licenses alert last_modified",
        ),
        (
            "service_area",
            "service_areas.csv",
            "id service_id name description extent extent_type uri",
        ),
        ("language", "languages.csv", "id service_id location_id phone_id name code note"),
        (
            "schedule",
            "schedules.csv",
            "id service_id location_id service_at_location_id valid_from valid_to dtstart "
            "timezone until count wkst freq interval byday byweekno bymonthday byyearday "
            "description opens_at closes_at schedule_link attending_type notes",
        ),
        (
            "phone",
            "phones.csv",
            "id location_id service_id organization_id contact_id service_at_location_id "
            "number extension type description",
        ),
        (
            "contact",
            "contacts.csv",
            "id organization_id service_id service_at_location_id location_id name title "
            "department email",
        ),
        (
            "location",
            "locations.csv",
            "id location_type url organization_id name alternate_name description "
            "transportation latitude longitude external_identifier external_identifier_type",
        ),
        ("service_at_location", "service_at_location.csv", "id service_id location_id description"),
        ("accessibility", "accessibility.csv", "id location_id description details url"),
        ("attribute", "attributes.csv", "id link_id taxonomy_term_id link_type link_entity value"),
        (
            "taxonomy_term",
            "taxonomy_terms.csv",
            "id code name description parent_id taxonomy language taxonomy_id term_uri",
        ),
        ("taxonomy", "taxonomies.csv", "id name description uri version"),
    )
}

# ISO 639-1 codes (639-3 where there is no two-letter code) of languages often offered in
# England and Wales; a language not listed here is exported by name only.
LANGUAGE_CODES = {
    "albanian": "sq", "amharic": "am", "arabic": "ar", "bengali": "bn", "bangla": "bn",
    "british sign language": "bfi", "bsl": "bfi", "bulgarian": "bg", "cantonese": "yue",
    "chinese": "zh", "dari": "prs", "english": "en", "farsi": "fa", "french": "fr",
    "german": "de", "greek": "el", "gujarati": "gu", "hindi": "hi", "hungarian": "hu",
    "italian": "it", "kurdish": "ku", "latvian": "lv", "lithuanian": "lt", "malayalam": "ml",
    "mandarin": "cmn", "nepali": "ne", "pashto": "ps", "persian": "fa", "polish": "pl",
    "portuguese": "pt", "punjabi": "pa", "romanian": "ro", "russian": "ru", "slovak": "sk",
    "somali": "so", "spanish": "es", "sylheti": "syl", "tamil": "ta", "tigrinya": "ti",
    "turkish": "tr", "twi": "tw", "ukrainian": "uk", "urdu": "ur", "vietnamese": "vi",
    "welsh": "cy", "yoruba": "yo",
}  # fmt: skip

# Taxonomies of needsled's own terms (HSDS attributes need a taxonomy term).
OFFENCES = "needsled offence groups"
SERVICE_TYPES = "needsled service types"
FIELDS = "needsled directory fields"
TAXONOMIES = {
    OFFENCES: "Offence groups of the needsled model the directory comes from (its offences "
    "table); a service has one attribute for each offence group it supports.",
    SERVICE_TYPES: "Kinds of victims' service, as the model's services table names them.",
    FIELDS: "Directory fields that HSDS has no field for, given as attribute values.",
}
LINK_TYPES = {OFFENCES: "offence", SERVICE_TYPES: "service_type"}  # FIELDS: the term's code
FIELD_TERMS = {
    "by_and_for": (
        "By and for",
        "Communities the service is run by and for (the attribute's value names them).",
    ),
    "expected_wait_weeks": (
        "Expected wait (weeks)",
        "Expected wait for a new referral in this area, in weeks: the waiting list at the end "
        "of the provider's latest quarterly return divided by the starts per week in that "
        "quarter (Little's law); 0 means no waiting list. Given only when at least 5 people "
        "started support and at least 5 were waiting, or none were waiting.",
    ),
    "expected_wait_quarter": (
        "Expected wait: quarter",
        "The quarter (YYYY-Qn) of the provider return the expected wait comes from.",
    ),
}


def stable_id(*parts: str) -> str:
    """A UUID 5 of the parts: the same parts give the same id in every export."""
    return str(uuid.uuid5(NAMESPACE, json.dumps(parts)))


# ---------------------------------------------------------------- opening hours

_DAY_NAMES = {
    "mon": "MO", "monday": "MO", "tue": "TU", "tues": "TU", "tuesday": "TU", "wed": "WE",
    "wednesday": "WE", "thu": "TH", "thur": "TH", "thurs": "TH", "thursday": "TH",
    "fri": "FR", "friday": "FR", "sat": "SA", "saturday": "SA", "sun": "SU", "sunday": "SU",
}  # fmt: skip
_WEEK = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_WORDS = {"weekdays": _WEEK[:5], "weekends": _WEEK[5:], "daily": _WEEK, "every day": _WEEK}
_TIME = r"[0-9]{1,2}(?:[:.][0-9]{2})?\s*(?:am|pm)?"
_SEGMENT = re.compile(
    rf"(?P<days>[a-z ,\-–]+?)\s+(?P<open>{_TIME})\s*(?:-|–|to)\s*(?P<close>{_TIME})"
)


def _time(text: str) -> str | None:
    m = re.fullmatch(r"([0-9]{1,2})(?:[:.]([0-9]{2}))?\s*(am|pm)?", text.strip())
    if m is None:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m.group(3) == "pm" else 0)
    return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None


def _days(text: str) -> tuple[str, ...] | None:
    text = " ".join(text.split()).strip(" ,")
    if text in _DAY_WORDS:
        return _DAY_WORDS[text]
    days: list[str] = []
    for part in re.split(r"\s*,\s*|\s+and\s+", text):
        ends = [_DAY_NAMES.get(p.strip()) for p in re.split(r"\s*(?:-|–|to)\s*", part)]
        if not ends or None in ends or len(ends) > 2:
            return None
        first, last = _WEEK.index(str(ends[0])), _WEEK.index(str(ends[-1]))
        if last < first:
            return None
        days += _WEEK[first : last + 1]
    return tuple(dict.fromkeys(days))


def parse_opening_hours(text: str) -> list[tuple[tuple[str, ...], str, str]] | None:
    """Opening hours as (days, opens HH:MM, closes HH:MM) per ';'-separated part, or None.

    Understands e.g. "Mon-Fri 09:00-17:00; Sat 10:00-13:00", "Weekdays 9am to 5pm",
    "Mon, Wed 10.30-14:00". Anything else (None) is exported as the schedule's description.
    """
    out = []
    for segment in (s.strip() for s in text.casefold().split(";")):
        m = _SEGMENT.fullmatch(segment)
        if m is None:
            return None
        days, opens, closes = (
            _days(m.group("days")),
            _time(m.group("open")),
            _time(m.group("close")),
        )
        if days is None or opens is None or closes is None or closes <= opens:
            return None
        out.append((days, opens, closes))
    return out or None


# ---------------------------------------------------------------- the tables


def exportable(directory: Directory) -> tuple[Entry, ...]:
    """The entries with a provider (those without one have no organization to publish)."""
    return tuple(e for e in directory.entries if e.provider)


def _compact(row: Row) -> Row:
    return {k: v for k, v in row.items() if v is not None and v != ""}


def _attending(delivery: str) -> str:
    return {
        "in person": "In person",
        "online": "Online (phone or video)",
        "both": "In person, or online (phone or video)",
    }.get(delivery, "")


def _term(tables: dict[str, list[Row]], taxonomy: str, code: str, name: str, text: str) -> str:
    term_id = stable_id("taxonomy_term", taxonomy, code)
    if all(t["id"] != term_id for t in tables["taxonomy_term"]):
        tax_id = stable_id("taxonomy", taxonomy)
        if all(t["id"] != tax_id for t in tables["taxonomy"]):
            tables["taxonomy"].append(
                {"id": tax_id, "name": taxonomy, "description": TAXONOMIES[taxonomy]}
            )
        tables["taxonomy_term"].append(
            _compact(
                {
                    "id": term_id,
                    "code": code,
                    "name": name,
                    "description": text,
                    "taxonomy": taxonomy,
                    "language": "en",
                    "taxonomy_id": tax_id,
                }
            )
        )
    return term_id


def _attribute(
    tables: dict[str, list[Row]],
    link: tuple[str, str],
    taxonomy: str,
    term: tuple[str, str, str],
    value: str = "",
) -> None:
    entity, link_id = link
    term_id = _term(tables, taxonomy, *term)
    tables["attribute"].append(
        _compact(
            {
                "id": stable_id("attribute", link_id, term_id),
                "link_id": link_id,
                "taxonomy_term_id": term_id,
                "link_type": LINK_TYPES[taxonomy] if taxonomy in LINK_TYPES else term[0],
                "link_entity": entity,
                "value": value,
            }
        )
    )


def hsds_tables(directory: Directory) -> dict[str, list[Row]]:
    """Every HSDS record, table by table, as in the tabular format (blank fields left out)."""
    tables: dict[str, list[Row]] = {name: [] for name in HSDS_TABLES}
    entries = exportable(directory)
    area_names = dict(zip(directory.area_codes, directory.area_names, strict=True))
    offence_names = dict(zip(directory.offence_codes, directory.offence_names, strict=True))
    providers = dict.fromkeys(e.provider for e in entries)
    for provider in providers:
        mine = [e for e in entries if e.provider == provider]
        names = ", ".join(dict.fromkeys(e.service_name for e in mine))
        tables["organization"].append(
            {
                "id": stable_id("organization", provider),
                "name": mine[0].provider_name,
                "description": f"{mine[0].provider_name} provides: {names}.",
            }
        )
    for e in entries:
        _service(tables, e, area_names, offence_names)
    return tables


def _service(
    tables: dict[str, list[Row]],
    e: Entry,
    area_names: dict[str, str],
    offence_names: dict[str, str],
) -> None:
    org_id = stable_id("organization", e.provider)
    sid = stable_id("service", e.provider, e.service)
    tables["service"].append(
        _compact(
            {
                "id": sid,
                "organization_id": org_id,
                "name": e.service_name,
                "alternate_name": f"{e.provider_name}: {e.service_name}",
                "description": e.description or e.service_name,
                "url": e.website if valid_website(e.website) else "",
                "email": e.email,
                "status": "active",
                "application_process": e.how_to_refer,
                "eligibility_description": e.eligibility,
            }
        )
    )
    if e.phone:
        tables["phone"].append(
            {
                "id": stable_id("phone", e.provider, e.service),
                "service_id": sid,
                "number": e.phone,
                "type": "voice",
                "description": "Public number for referrals",
            }
        )
    if e.email:
        tables["contact"].append(
            {
                "id": stable_id("contact", e.provider, e.service),
                "service_id": sid,
                "department": "Referrals",
                "email": e.email,
            }
        )
    _schedules(tables, e, sid)
    for lang in e.languages:
        tables["language"].append(
            _compact(
                {
                    "id": stable_id("language", e.provider, e.service, lang.casefold()),
                    "service_id": sid,
                    "name": lang,
                    "code": LANGUAGE_CODES.get(lang.casefold(), ""),
                }
            )
        )
    _areas(tables, e, sid, area_names)
    _locations(tables, e, sid, org_id)
    link = ("service", sid)
    for code in e.offences:
        name = offence_names.get(code, code)
        _attribute(tables, link, OFFENCES, (code, name, f"Offence group {code}: {name}"))
    if e.service_type:
        kind = re.sub(r"[^0-9a-z]+", "-", e.service_type.casefold()).strip("-")
        _attribute(tables, link, SERVICE_TYPES, (kind, e.service_type, e.service_type))
    if e.by_and_for:
        _attribute(tables, link, FIELDS, ("by_and_for", *FIELD_TERMS["by_and_for"]), e.by_and_for)


def _schedules(tables: dict[str, list[Row]], e: Entry, sid: str) -> None:
    if not e.opening_hours:
        return
    parsed = parse_opening_hours(e.opening_hours)
    base: Row = {
        "service_id": sid,
        "description": e.opening_hours,
        "attending_type": _attending(e.delivery),
    }
    if parsed is None:
        tables["schedule"].append(
            _compact({"id": stable_id("schedule", e.provider, e.service), **base})
        )
        return
    for i, (days, opens, closes) in enumerate(parsed):
        row = {
            "id": stable_id("schedule", e.provider, e.service, str(i)),
            **base,
            "wkst": "MO",
            "freq": "WEEKLY",
            "interval": 1,
            "byday": ",".join(days),
            "opens_at": opens,
            "closes_at": closes,
            "notes": LOCAL_TIME,
        }
        tables["schedule"].append(_compact(row))


def _areas(tables: dict[str, list[Row]], e: Entry, sid: str, area_names: dict[str, str]) -> None:
    for code in e.areas:
        wait = e.wait(code)
        area_id = stable_id("service_area", e.provider, e.service, code)
        name = area_names.get(code, code)
        tables["service_area"].append(
            {
                "id": area_id,
                "service_id": sid,
                "name": name,
                "description": f"{name} ({code}). Expected wait for a new referral: {wait.note}.",
                "uri": AREA_URI.format(code),
            }
        )
        if wait.weeks is not None and wait.quarter:
            link = ("service_area", area_id)
            for field, value in (
                ("expected_wait_weeks", f"{wait.weeks:g}"),
                ("expected_wait_quarter", wait.quarter),
            ):
                _attribute(tables, link, FIELDS, (field, *FIELD_TERMS[field]), value)


def _locations(tables: dict[str, list[Row]], e: Entry, sid: str, org_id: str) -> None:
    kinds = {"in person": ("physical",), "online": ("virtual",), "both": ("physical", "virtual")}
    for kind in kinds.get(e.delivery, ("physical",)):
        loc_id = stable_id("location", e.provider, e.service, kind)
        online = kind == "virtual"
        tables["location"].append(
            _compact(
                {
                    "id": loc_id,
                    "location_type": kind,
                    "url": e.website if online and valid_website(e.website) else "",
                    "organization_id": org_id,
                    "name": f"{e.provider_name}: {e.service_name}"
                    + (" (online)" if online else " (in person)"),
                    "description": "By phone or video." if online else NOT_PUBLISHED,
                }
            )
        )
        tables["service_at_location"].append(
            {
                "id": stable_id("service_at_location", e.provider, e.service, kind),
                "service_id": sid,
                "location_id": loc_id,
                "description": _attending("online" if online else "in person"),
            }
        )
        if e.accessibility:
            tables["accessibility"].append(
                {
                    "id": stable_id("accessibility", e.provider, e.service, kind),
                    "location_id": loc_id,
                    "description": e.accessibility,
                }
            )


# ---------------------------------------------------------------- nested JSON


def _children(rows: Iterable[Row], key: str, value: str) -> list[Row]:
    return [r for r in rows if r.get(key) == value]


def _attributes(tables: dict[str, list[Row]], link_id: str) -> list[Row]:
    taxonomies = {t["id"]: t for t in tables["taxonomy"]}
    terms = {
        t["id"]: {**t, "taxonomy_detail": taxonomies[t["taxonomy_id"]]}
        for t in tables["taxonomy_term"]
    }
    return [
        {**a, "taxonomy_term": terms[a["taxonomy_term_id"]]}
        for a in _children(tables["attribute"], "link_id", link_id)
    ]


def _with(row: Row, key: str, children: list[Row]) -> Row:
    """The row with its children under ``key`` (left out when there are none)."""
    return {**row, key: children} if children else dict(row)


def _location(tables: dict[str, list[Row]], location: Row) -> Row:
    return _with(
        location, "accessibility", _children(tables["accessibility"], "location_id", location["id"])
    )


def hsds_services(tables: dict[str, list[Row]]) -> list[Row]:
    """Every service fully nested, as HSDS's ``/services/{id}`` gives one."""
    orgs = {o["id"]: o for o in tables["organization"]}
    locations = {loc["id"]: loc for loc in tables["location"]}
    out = []
    for service in tables["service"]:
        sid = service["id"]
        nested: Row = {**service, "organization": orgs[service["organization_id"]]}
        for key, table in (
            ("phones", "phone"),
            ("contacts", "contact"),
            ("schedules", "schedule"),
            ("languages", "language"),
        ):
            nested[key] = _children(tables[table], "service_id", sid)
        nested["service_areas"] = [
            _with(area, "attributes", _attributes(tables, area["id"]))
            for area in _children(tables["service_area"], "service_id", sid)
        ]
        nested["service_at_locations"] = [
            {**sal, "location": _location(tables, locations[sal["location_id"]])}
            for sal in _children(tables["service_at_location"], "service_id", sid)
        ]
        nested["attributes"] = _attributes(tables, sid)
        out.append({k: v for k, v in nested.items() if v != []})
    return out


def hsds_organizations(tables: dict[str, list[Row]]) -> list[Row]:
    """Every organization with its locations and its services (one-to-one fields only)."""
    return [
        {
            **org,
            "locations": [
                _location(tables, loc)
                for loc in _children(tables["location"], "organization_id", org["id"])
            ],
            "services": _children(tables["service"], "organization_id", org["id"]),
        }
        for org in tables["organization"]
    ]


def _csv_text(value: object) -> str:
    return "" if value is None else str(value)


def write_hsds(directory: Directory, folder: Path) -> dict[str, Path]:
    """Write services.json, organizations.json and csv/<table>.csv; return their paths."""
    tables = hsds_tables(directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "csv").mkdir(exist_ok=True)
    paths: dict[str, Path] = {}
    for name, records in (
        ("services.json", hsds_services(tables)),
        ("organizations.json", hsds_organizations(tables)),
    ):
        path = folder / name
        path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths[name] = path
    for table, (file_name, columns) in HSDS_TABLES.items():
        path = folder / "csv" / file_name
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows([_csv_text(r.get(c)) for c in columns] for r in tables[table])
        paths[f"csv/{file_name}"] = path
    return paths

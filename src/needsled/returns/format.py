"""The shape of a provider return, declared once: every part of needsled that reads, writes,
checks or uses returns takes its names from here.

A return, once imported, is a tidy table with one row per count (:data:`COLUMNS`):

``provider, service, area, quarter, measure, category, value``

- ``provider``: the provider's code (the ``directory`` table's ``provider``).
- ``service``: a service code from the model; ``area``: a GSS area code from the model.
- ``quarter``: ``YYYY-Qn`` in calendar quarters (Q1 = January to March), e.g. ``2025-Q2``.
- ``measure`` and ``category``: one of :data:`MEASURES`; ``category`` is ``""`` for a measure
  with no breakdown, otherwise one of that measure's categories (for ``referrals_offence``, an
  offence code from the model).
- ``value``: a count of people (a whole number, at least 0), except ``fte_in_post`` and
  ``fte_vacant`` (FTE, decimals allowed).

Counts are for the quarter (flows) or at the quarter's end (stocks), as each measure says.
Returns hold counts only: a return with record-level data is refused.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

__all__ = [
    "AGE_BANDS",
    "CLOSURE_REASONS",
    "COLUMNS",
    "GROUPS",
    "GUIDANCE",
    "MEASURES",
    "NEED_CATEGORIES",
    "ROUTES",
    "WAIT_BANDS",
    "Measure",
    "categories_of",
    "is_quarter",
    "quarter_end",
    "quarter_label",
    "quarter_months",
]

COLUMNS = ("provider", "service", "area", "quarter", "measure", "category", "value")

ROUTES = ("police", "self", "other agency")
CLOSURE_REASONS = ("completed", "disengaged", "moved to another service")
# Time waited, in whole weeks: for the waiting list at quarter end, and for those who started
# support in the quarter (time from referral to first support).
WAIT_BANDS = ("0-4 weeks", "5-12 weeks", "13-26 weeks", "27-52 weeks", "over 52 weeks")
WAIT_BAND_EDGES_WEEKS = (0.0, 5.0, 13.0, 27.0, 53.0)  # lower edges of WAIT_BANDS
# The eight categories of need in the MoJ victims' services commissioning framework.
NEED_CATEGORIES = (
    "mental and physical health",
    "shelter and accommodation",
    "family, friends and children",
    "education, skills and employment",
    "drugs and alcohol",
    "finance and benefits",
    "outlook and attitudes",
    "social interaction",
)
SATISFACTION = ("satisfied", "neither", "dissatisfied")
SEX = ("female", "male", "other or not known")
AGE_BANDS = ("under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65 and over", "not known")
ETHNICITY = ("Asian", "Black", "Mixed", "White", "Other", "not known")  # ONS 5 groups
DISABILITY = ("disabled", "not disabled", "not known")
SEXUALITY = ("heterosexual", "gay or lesbian", "bisexual", "other", "not known")
# The personal characteristics that returns break service users down by, with their categories.
GROUPS: dict[str, tuple[str, ...]] = {
    "sex": SEX,
    "age": AGE_BANDS,
    "ethnicity": ETHNICITY,
    "disability": DISABILITY,
    "sexuality": SEXUALITY,
}


_GROUP_WORDS = {
    "sex": "sex",
    "age": "age band",
    "ethnicity": "ethnic group",
    "disability": "disability",
    "sexuality": "sexual orientation",
}


@dataclass(frozen=True)
class Measure:
    name: str
    label: str  # plain words, for templates, reports and messages
    categories: tuple[str, ...]  # () = no breakdown; ("<offence>",) = the model's offence codes
    kind: str  # "flow" (during the quarter), "stock" (at quarter end) or "fte"
    sums_to: str = ""  # the categories add up to this measure (checked on import)
    group: bool = False  # a breakdown of service users by a personal characteristic
    # Counts some of those counted by this measure, category by category (same categories):
    # needs it, and is at most it (checked on import; the share is this over that).
    share_of: str = ""
    # Each category (or the value) is at most the total of each of these (checked on import).
    at_most: tuple[str, ...] = ()


OFFENCE = "<offence>"

MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("referrals", "Referrals received, by route", ROUTES, "flow"),
        Measure(
            "referrals_offence", "Referrals received, by offence", (OFFENCE,), "flow", "referrals"
        ),
        Measure("contacted", "Referrals the service made contact with", (), "flow"),
        Measure("declined", "Declined support after first contact", (), "flow"),
        Measure("left_waiting_list", "Left the waiting list without starting support", (), "flow"),
        Measure("starts", "Started support", (), "flow"),
        Measure(
            "starts_wait",
            "Started support, by time waited since referral",
            WAIT_BANDS,
            "flow",
            "starts",
        ),
        Measure("closures", "Cases closed, by reason", CLOSURE_REASONS, "flow"),
        Measure("reengaged", "Closed cases that came back into support", (), "flow"),
        Measure(
            "rereferred",
            "Re-referred within a year of an earlier closure",
            (),
            "flow",
            at_most=("referrals",),
        ),
        Measure("open_end", "Open cases at quarter end", (), "stock"),
        Measure("waiting_end", "Waiting list at quarter end", (), "stock"),
        Measure(
            "waiting_band",
            "Waiting list at quarter end, by time waited",
            WAIT_BANDS,
            "stock",
            "waiting_end",
        ),
        Measure("fte_in_post", "Staff in post at quarter end (FTE)", (), "fte"),
        Measure("fte_vacant", "Vacant posts at quarter end (FTE)", (), "fte"),
        Measure(
            "outcome_need",
            "Closed cases with this need at assessment",
            NEED_CATEGORIES,
            "flow",
            at_most=("outcome_assessed",),
        ),
        Measure(
            "outcome_improved",
            "Of those, better able to cope and recover at closure",
            NEED_CATEGORIES,
            "flow",
            share_of="outcome_need",
            at_most=("outcome_better",),
        ),
        Measure(
            "outcome_assessed",
            "Closed cases with cope-and-recover outcomes recorded (needs assessed)",
            (),
            "flow",
            at_most=("closures",),
        ),
        Measure(
            "outcome_better",
            "Of those, better able to cope and recover in at least one need at closure",
            (),
            "flow",
            share_of="outcome_assessed",
        ),
        Measure(
            "satisfaction", "Service users' satisfaction (survey answers)", SATISFACTION, "flow"
        ),
        Measure("users_sex", "People who started support, by sex", SEX, "flow", "starts", True),
        Measure(
            "users_age",
            "People who started support, by age band",
            AGE_BANDS,
            "flow",
            "starts",
            True,
        ),
        Measure(
            "users_ethnicity",
            "People who started support, by ethnic group",
            ETHNICITY,
            "flow",
            "starts",
            True,
        ),
        Measure(
            "users_disability",
            "People who started support, by disability",
            DISABILITY,
            "flow",
            "starts",
            True,
        ),
        Measure(
            "users_sexuality",
            "People who started support, by sexual orientation",
            SEXUALITY,
            "flow",
            "starts",
            True,
        ),
        *(
            m
            for group, cats in GROUPS.items()
            for m in (
                Measure(
                    f"outcome_assessed_{group}",
                    f"Closed cases with outcomes recorded, by {_GROUP_WORDS[group]}",
                    cats,
                    "flow",
                    "outcome_assessed",
                    True,
                ),
                Measure(
                    f"outcome_better_{group}",
                    f"Of those, better able to cope and recover, by {_GROUP_WORDS[group]}",
                    cats,
                    "flow",
                    "outcome_better",
                    True,
                    share_of=f"outcome_assessed_{group}",
                ),
            )
        ),
    )
}
# "referrals" (by route) is the total of referrals; "referrals_offence" adds up to it too.
# "outcome_improved" in a category is at most "outcome_need" in it.

# What to count for each measure, in plain words (the return's instructions and the user guide).
GUIDANCE: dict[str, str] = {
    "referrals": "Referrals received in the quarter, by who referred: the police, the victim "
    "themselves, or another agency (health, social care, another service). Count each referral "
    "once, including people referred again.",
    "referrals_offence": "The same referrals, by the offence they were referred for (the "
    "model's offence groups). These add up to the referrals by route.",
    "contacted": "Referrals received in the quarter that the service was in contact with, "
    "by every route: count every self- and other-agency referral as contacted (they made "
    "contact themselves), and police referrals only once the service reached the person.",
    "declined": "People who declined support after first contact, in the quarter.",
    "left_waiting_list": "People who left the waiting list in the quarter without starting "
    "support (could not be reached, no longer wanted it, moved away).",
    "starts": "People who started support (their first support session) in the quarter.",
    "starts_wait": "The same people, by how long they had waited since referral, in whole "
    "weeks. These add up to 'Started support'.",
    "closures": "Cases closed in the quarter, by reason: support completed, the person "
    "disengaged, or handed over to another service.",
    "reengaged": "Cases closed earlier (soft closure) that came back into support in the "
    "quarter without a new referral.",
    "rereferred": "Referrals received in the quarter for people whose earlier case with the "
    "service closed less than a year before. At most the referrals received.",
    "open_end": "Open cases (people in support) on the last day of the quarter.",
    "waiting_end": "People on the waiting list on the last day of the quarter.",
    "waiting_band": "The same waiting list, by how long each person had waited so far, in "
    "whole weeks. These add up to the waiting list at quarter end.",
    "fte_in_post": "Staff delivering this service in this area on the last day of the "
    "quarter, in full-time equivalents (a decimal, e.g. 2.5).",
    "fte_vacant": "Funded posts empty on the last day of the quarter, in full-time equivalents.",
    "outcome_need": "Cases closed in the quarter whose assessment found a need in this "
    "category (a case may have needs in several categories). At most the cases with outcomes "
    "recorded.",
    "outcome_improved": "Of the closed cases with a need in this category, those better able "
    "to cope and recover in it at closure. At most the cases with that need, and at most the "
    "cases better able to cope and recover in at least one need.",
    "outcome_assessed": "Cases closed in the quarter that had their needs assessed, so that "
    "outcomes at closure are recorded. At most the cases closed.",
    "outcome_better": "Of those, cases better able to cope and recover in at least one need at "
    "closure.",
    "satisfaction": "Answers to your satisfaction question from people whose support ended in "
    "the quarter: satisfied, neither, dissatisfied.",
    "users_sex": "People who started support in the quarter, by sex. These add up to "
    "'Started support'; use 'not known' where it was not recorded.",
    "users_age": "People who started support in the quarter, by age band at referral.",
    "users_ethnicity": "People who started support in the quarter, by ethnic group (ONS five "
    "groups).",
    "users_disability": "People who started support in the quarter, by disability.",
    "users_sexuality": "People who started support in the quarter, by sexual orientation.",
    **{
        f"outcome_assessed_{g}": f"Closed cases with outcomes recorded, by {_GROUP_WORDS[g]}. "
        "These add up to the closed cases with outcomes recorded."
        for g in GROUPS
    },
    **{
        f"outcome_better_{g}": f"Of those, cases better able to cope and recover in at least one "
        f"need, by {_GROUP_WORDS[g]}. These add up to the cases better able to cope and recover."
        for g in GROUPS
    },
}


def categories_of(measure: str, offences: tuple[str, ...]) -> tuple[str, ...]:
    """A measure's categories, with the model's offence codes in place of ``<offence>``;
    ``("",)`` for a measure with no breakdown (its one row has category ``""``)."""
    cats = MEASURES[measure].categories
    if cats == (OFFENCE,):
        return offences
    return cats or ("",)


_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def is_quarter(text: str) -> bool:
    """Whether ``text`` is a calendar quarter written ``YYYY-Qn`` (n from 1 to 4)."""
    return bool(_QUARTER.match(text))


def quarter_end(quarter: str) -> dt.date:
    """The last day of a calendar quarter ``YYYY-Qn``."""
    year, q = quarter.split("-Q")
    month = int(q) * 3
    return dt.date(int(year), month, calendar.monthrange(int(year), month)[1])


def quarter_label(quarter: str) -> str:
    """The quarter in words: ``2025-Q2`` -> ``April to June 2025``."""
    year, q = quarter.split("-Q")
    first = (int(q) - 1) * 3
    return f"{_MONTHS[first]} to {_MONTHS[first + 2]} {year}"


def quarter_months(quarter: str) -> tuple[str, str, str]:
    """The three months (YYYY-MM) of a calendar quarter written YYYY-Qn."""
    year, q = quarter.split("-Q")
    first = (int(q) - 1) * 3 + 1
    return tuple(f"{year}-{m:02d}" for m in range(first, first + 3))  # type: ignore[return-value]

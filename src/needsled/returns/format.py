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

from dataclasses import dataclass

__all__ = [
    "AGE_BANDS",
    "CLOSURE_REASONS",
    "COLUMNS",
    "MEASURES",
    "NEED_CATEGORIES",
    "ROUTES",
    "WAIT_BANDS",
    "Measure",
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


@dataclass(frozen=True)
class Measure:
    name: str
    label: str  # plain words, for templates, reports and messages
    categories: tuple[str, ...]  # () = no breakdown; ("<offence>",) = the model's offence codes
    kind: str  # "flow" (during the quarter), "stock" (at quarter end) or "fte"
    sums_to: str = ""  # the categories add up to this measure (checked on import)
    group: bool = False  # a breakdown of service users by a personal characteristic


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
        Measure("rereferred", "Re-referred within a year of an earlier closure", (), "flow"),
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
            "outcome_need", "Closed cases with this need at assessment", NEED_CATEGORIES, "flow"
        ),
        Measure(
            "outcome_improved",
            "Of those, better able to cope and recover at closure",
            NEED_CATEGORIES,
            "flow",
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
    )
}
# "referrals" (by route) is the total of referrals; "referrals_offence" adds up to it too.
# "outcome_improved" in a category is at most "outcome_need" in it.


def quarter_months(quarter: str) -> tuple[str, str, str]:
    """The three months (YYYY-MM) of a calendar quarter written YYYY-Qn."""
    year, q = quarter.split("-Q")
    first = (int(q) - 1) * 3 + 1
    return tuple(f"{year}-{m:02d}" for m in range(first, first + 3))  # type: ignore[return-value]

"""Readers for published source data (MPS, ONS, GLA, ONS lookups).

Every reader validates its input completely before returning, raises
:class:`~needsled.sources.errors.SourceFormatError` (a ``ValueError``) naming the file,
line, column and value of every problem it found, and never modifies the input file.
"""

from needsled.sources.errors import PeriodNotAvailableError, Problem, SourceFormatError
from needsled.sources.met import MetCrime, MetFileInfo, read_met_borough_crime
from needsled.sources.ons_pfa import (
    NON_TERRITORIAL_PFAS,
    TERRITORIAL_PFAS,
    pfa_code_for_name,
    read_ons_pfa_crime,
)
from needsled.sources.population import (
    LONDON_BOROUGHS,
    london_borough_table,
    read_borough_codes,
    read_gla_borough_population,
    read_lad_pfa_lookup,
)

__all__ = [
    "LONDON_BOROUGHS",
    "NON_TERRITORIAL_PFAS",
    "TERRITORIAL_PFAS",
    "MetCrime",
    "MetFileInfo",
    "PeriodNotAvailableError",
    "Problem",
    "SourceFormatError",
    "london_borough_table",
    "pfa_code_for_name",
    "read_borough_codes",
    "read_gla_borough_population",
    "read_lad_pfa_lookup",
    "read_met_borough_crime",
    "read_ons_pfa_crime",
]

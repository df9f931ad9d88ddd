"""Commands that turn official data into models and evidence.

* ``needsled import met-crime FILE... --out MODEL``: build a complete, runnable London model
  from the Met Police borough-level crime files (the ``data_app`` Typer group, ``import``);
* ``needsled backtest MODEL --out DIR``: rolling-origin backtests of the crime forecaster on
  every series of a model (:func:`backtest`);
* ``needsled funding-shares --pfa-crime FILE ...``: each police force area's share of a
  national grant, and London's against its MoJ grant share (:func:`funding_shares`).

Like :mod:`needsled.cli` this is a thin layer: it reads files with the readers in
:mod:`needsled.sources`, calls the library and prints what happened. A bad input file is
reported by name with how to fix it (exit code 1); it is never a traceback.
"""

from needsled.cli_backtest import backtest, backtest_summary, run_backtest
from needsled.cli_common import UserError
from needsled.cli_funding import funding_shares
from needsled.cli_import import (
    DEFAULT_OFFENCES,
    MET_OFFENCE_CODES,
    MetImport,
    build_met_model,
    data_app,
    import_met_crime,
)

__all__ = [
    "DEFAULT_OFFENCES",
    "MET_OFFENCE_CODES",
    "MetImport",
    "UserError",
    "backtest",
    "backtest_summary",
    "build_met_model",
    "data_app",
    "funding_shares",
    "import_met_crime",
    "run_backtest",
]

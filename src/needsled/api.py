"""The Python API, mirroring the command line::

import needsled
run = needsled.run("my-model/", replicates=200)      # or needsled.run(needsled.example())
run.plot.waiting_list()                                # an Altair chart in a notebook
"""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path

import altair as alt
import pandas as pd

from needsled import charts
from needsled.example import write_example
from needsled.io.load import load_model
from needsled.io.outputs import write_run
from needsled.model import Model
from needsled.projection import Progress, RunResult
from needsled.projection import run as run_core
from needsled.results import queueing_table, results_table, summary_table, waterfall_table

__all__ = ["Run", "example", "load", "run"]


def load(path: str | Path, scenarios: str | Path | None = None) -> Model:
    """Load and validate a model folder or workbook (raises InputError listing every problem)."""
    return load_model(path, scenarios)


def example(folder: str | Path | None = None) -> Model:
    """The built-in London-like example model (written to ``folder`` or a temporary one)."""
    target = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="needsled-example-"))
    return load_model(write_example(target))


class _Plots:
    def __init__(self, run: Run) -> None:
        self._run = run

    def demand_capacity(self, scenario: str | None = None) -> alt.FacetChart:
        return charts.demand_capacity(
            self._run.results, scenario or self._run.scenarios[0], self._service_names()
        )

    def waiting_list(self) -> alt.FacetChart:
        return charts.waiting_list(self._run.results, self._service_names())

    def scenario_shortfall(self, year: str | None = None) -> alt.FacetChart:
        summ = self._run.summary
        return charts.scenario_shortfall(
            summ, year or str(summ["year"].max()), self._service_names()
        )

    def _service_names(self) -> dict[str, str]:
        services = self._run.model.services
        return dict(zip(services.codes, services.names, strict=True))

    def shortfall_by_area(self, scenario: str | None = None, year: str | None = None) -> alt.Chart:
        model = self._run.model
        summ = self._run.summary
        return charts.shortfall_by_area(
            summ,
            scenario or self._run.scenarios[0],
            year or str(summ["year"].max()),
            dict(zip(model.area_codes, model.area_names, strict=True)),
        )

    def waterfall(self, scenario: str) -> alt.Chart:
        return charts.waterfall(self._run.waterfall, scenario)


class Run:
    """A finished run: tables as DataFrames (computed on first use), charts and saving."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.plot = _Plots(self)

    @property
    def model(self) -> Model:
        return self.result.model

    @property
    def scenarios(self) -> list[str]:
        return [s.scenario.name for s in self.result.scenarios]

    @cached_property
    def results(self) -> pd.DataFrame:
        return results_table(self.result)

    @cached_property
    def summary(self) -> pd.DataFrame:
        return summary_table(self.result)

    @cached_property
    def waterfall(self) -> pd.DataFrame:
        return waterfall_table(self.result)

    @cached_property
    def queueing(self) -> pd.DataFrame:
        return queueing_table(self.result)

    def save(
        self,
        out: str | Path,
        *,
        suppress: bool = True,
        pdf: bool = True,
        geojson: str | Path | None = None,
    ) -> dict[str, Path]:
        """Write every output file (as ``needsled run --out``) and return their paths.

        ``pdf=False`` skips report.pdf; ``geojson`` is a file of area boundaries for the
        report's map (London boroughs get a tile map without one).
        """
        from needsled.io.geojson import load_boundaries

        boundaries = None if geojson is None else load_boundaries(geojson)
        return write_run(
            self.result,
            out,
            command="needsled.api.Run.save",
            suppress=suppress,
            pdf=pdf,
            boundaries=boundaries,
        )


def run(
    model: Model | str | Path,
    scenarios: list[str] | None = None,
    replicates: int = 500,
    seed: int = 20240401,
    progress: Progress | None = None,
) -> Run:
    """Run a model (or the path of one) for the named scenarios (default: all)."""
    loaded = model if isinstance(model, Model) else load_model(model)
    return Run(run_core(loaded, scenarios, replicates, seed, progress))

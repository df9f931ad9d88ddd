"""needsled: demand and capacity modelling for victims' services.

Three lines in a notebook::

    import needsled
    run = needsled.run(needsled.example(), replicates=200)
    run.plot.waiting_list()

and the best staffing plan within a budget: ``needsled.plan(model, budget=21.8e6)``.
"""

__version__ = "0.2.0"

from needsled.api import Run, example, load, run
from needsled.errors import InputError, Problem
from needsled.optimise import plan

__all__ = ["InputError", "Problem", "Run", "__version__", "example", "load", "plan", "run"]

"""needsled: demand and capacity modelling for victims' services."""

__version__ = "0.1.0"

"""Quarterly provider returns: what services report they actually did (counts only).

- ``format``: the shape of a return, declared once (measures, categories, quarters).
- ``providers``: who delivers what, where (the model's ``directory`` table).
- ``layout``, ``template``: the Excel return for one provider and quarter.
- ``checks`` (pure), ``read``: reading filled-in returns, every problem at once.
- ``store``: the folder of imported returns (``returns.parquet`` and an imports log).
- ``outcomes`` (pure), ``suppress``: outcome and journey tables, small numbers suppressed.
- ``calibrate``, ``compare``, ``synthetic``: parameters from returns, returns against the model.
"""

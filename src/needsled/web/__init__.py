"""The web application: the scenario explorer, models, scenarios, the optimiser and downloads,
for several organisations and their users, on an embedded SQLite store or PostgreSQL.

``needsled serve`` starts it (:mod:`needsled.cli_web`); :func:`needsled.web.app.create_app`
builds the ASGI application from a :class:`needsled.web.config.WebConfig`. See docs/web.md.
"""

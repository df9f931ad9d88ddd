# ruff: noqa: ARG001, ARG005  (every rule takes (world, org, role), whether it uses them or not)
"""The authorisation matrix: every route of the application x every role (and no one signed
in), on objects of the user's own organisation and of another one.

The route list comes from the application itself, and ``RULES`` must name every route: a new
route fails ``test_every_route_has_a_rule`` until its rule is written here. For each case the
test makes the request as that user (with a valid CSRF token, so that what is tested is the
authorisation, not the CSRF check) and asserts:

- allowed -> success (200, 201, 202, 204 or a 303 redirect to the next page);
- not allowed -> 403 or 404 (never a success);
- another organisation's object -> 404 (or 403 for a role refused before any lookup): never a
  success, so ids are not even confirmed;
- no one signed in -> 401 (API) or a redirect to the sign-in page.

Background runs (reports, plans) are recorded instead of run, at the executor boundary.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route
from web_helpers import PASSWORD, add_user, client, csrf_of
from web_models import small_model, zipped
from web_returns import filled_return, stored_counts

from needsled.io.load import load_model
from needsled.web import actions
from needsled.web.auth import Principal
from needsled.web.db import (
    ApiToken,
    PlanRun,
    ProviderReturn,
    Report,
    SavedScenario,
    StoredModel,
    User,
    utcnow,
)
from needsled.web.planning import PlanSettings, run_plan
from needsled.web.security import hash_token

ROLES = ("admin", "commissioner", "provider", "viewer")
ACTORS = ("anonymous", *ROLES)
OK = {200, 201, 202, 204, 303}
DENIED = {403, 404}
MARK = {"A": "Alpha", "B": "Bravo"}


@dataclass
class Org:
    key: str
    users: dict[str, User] = field(default_factory=dict)
    models: dict[str, StoredModel] = field(default_factory=dict)
    scenarios: dict[str, SavedScenario] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    plans: dict[str, PlanRun] = field(default_factory=dict)
    returns: dict[str, ProviderReturn] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)


@dataclass
class World:
    app: FastAPI
    orgs: dict[str, Org]
    zips: dict[str, bytes]
    plans: dict[str, dict[str, Any]]
    # filled-in returns to upload, by kind of model (the provider's on "isva", DAS's on "full")
    return_files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    return_counts: dict[str, list[list[Any]]] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)
    started: list[tuple[str, int]] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.app.state.needsled.store

    def n(self) -> int:
        return next(self.counter)

    def fresh_model(self, org: Org, uploader: str, kind: str) -> int:
        base = org.models[kind]
        with self.store.session() as db:
            src = db.get(StoredModel, base.id)
            row = StoredModel(
                organisation_id=base.organisation_id,
                name=f"{MARK[org.key]} copy {self.n()}",
                filename="copy.zip",
                archive=src.archive,
                sha256=src.sha256,
                size_bytes=src.size_bytes,
                services=list(src.services),
                summary=dict(src.summary),
                uploaded_by_id=org.users[uploader].id,
            )
            db.add(row)
            db.flush()
            return int(row.id)

    def fresh_scenario(self, org: Org, kind: str, owner: str, **flags: bool) -> int:
        with self.store.session() as db:
            row = SavedScenario(
                organisation_id=org.models[kind].organisation_id,
                model_id=org.models[kind].id,
                name=f"{MARK[org.key]} throwaway {self.n()}",
                settings={"police_reports": 10.0},
                owner_id=org.users[owner].id,
                **flags,
            )
            db.add(row)
            db.flush()
            return int(row.id)

    def fresh_user(self, org: Org) -> int:
        return add_user(
            self.app, f"Org {org.key}", f"spare{self.n()}@{org.key.lower()}.org", "viewer"
        )

    def fresh_token(self, org: Org, role: str) -> int:
        with self.store.session() as db:
            row = ApiToken(
                user_id=org.users[role].id,
                name="spare",
                token_hash=hash_token(f"spare-{self.n()}"),
                expires_at=utcnow().replace(year=utcnow().year + 1),
            )
            db.add(row)
            db.flush()
            return int(row.id)


def _upload(app: FastAPI, user: User, name: str, data: bytes) -> StoredModel:
    who = Principal(user, "matrix", "matrix")
    return actions.upload_model(app.state.needsled, who, name, [("model.zip", data)], "test")


def _objects(world: World, org: Org) -> None:
    app = world.app
    users = org.users
    org.models["full"] = _upload(
        app, users["commissioner"], f"{MARK[org.key]} full", world.zips["full"]
    )
    org.models["isva"] = _upload(
        app, users["provider"], f"{MARK[org.key]} isva", world.zips["isva"]
    )
    oid = org.models["full"].organisation_id
    with world.store.session() as db:
        for name, kind, owner, flags in (
            ("plain", "full", "commissioner", {}),
            ("shared", "full", "commissioner", {"shared_with_providers": True}),
            ("published", "full", "commissioner", {"published": True}),
            ("own", "isva", "provider", {}),
        ):
            sc = SavedScenario(
                organisation_id=oid,
                model_id=org.models[kind].id,
                name=f"{MARK[org.key]} {name}",
                settings={"police_reports": 10.0},
                owner_id=users[owner].id,
                **flags,
            )
            db.add(sc)
            db.flush()
            db.expunge(sc)
            org.scenarios[name] = sc
        for kind in ("full", "isva"):
            stored = org.models[kind]
            rep = Report(
                organisation_id=oid,
                model_id=stored.id,
                status="done",
                replicates=20,
                files=["report.html"],
            )
            plan = PlanRun(
                organisation_id=oid,
                model_id=stored.id,
                status="done",
                settings=PlanSettings().__dict__,
                result=world.plans[kind],
            )
            db.add_all([rep, plan])
            db.flush()
            db.expunge_all()
            org.reports[kind], org.plans[kind] = rep, plan
    # a stored return on each model: the provider's own (RCC, on "isva") and another
    # provider's (DAS, on "full", which a provider must not see)
    with world.store.session() as db:
        for kind, code in (("isva", "RCC"), ("full", "DAS")):
            stored = org.models[kind]
            service, area = stored.summary["directory"][code]["pairs"][0]
            ret = ProviderReturn(
                organisation_id=oid,
                model_id=stored.id,
                provider=code,
                service=service,
                area=area,
                quarter="2025-Q1",
                counts=world.return_counts[kind],
                filename=f"{MARK[org.key]} {code}.xlsx",
                sha256="0" * 64,
                replaced=0,
            )
            db.add(ret)
            db.flush()
            db.expunge(ret)
            org.returns[kind] = ret
    for kind, rep in org.reports.items():
        folder = app.state.needsled.jobs.folder(rep.id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.html").write_text(f"<p>{MARK[org.key]} {kind} report</p>")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from web_helpers import make_config

    from needsled.web.app import create_app

    root = tmp_path_factory.mktemp("matrix")
    # the provider (code RCC) delivers ISVA in every area of the "isva" model, so that model is
    # theirs; the "full" model's directory lists another provider (DAS) only
    zips = {
        "full": zipped(small_model(root / "full", directory=[("COUNSELLING", "DAS", "0")])),
        "isva": zipped(
            small_model(root / "isva", services=("ISVA",), directory=[("ISVA", "RCC", "")])
        ),
    }
    app = create_app(make_config(root / "data", warm_explorers=False))
    # a real optimiser result for each kind of model, for the plan pages to show
    plans = {
        kind: run_plan((0, kind), load_model(root / kind), PlanSettings(curve_steps=2), 1)
        for kind in ("full", "isva")
    }
    w = World(app, {k: Org(k) for k in ("A", "B")}, zips, plans)
    for kind, code in (("isva", "RCC"), ("full", "DAS")):
        path = filled_return(root / kind, code, "2024-Q4", root / "returns")
        w.return_files[kind] = (path.name, path.read_bytes())
        w.return_counts[kind] = stored_counts(root / kind)
    for org in w.orgs.values():
        for role in ROLES:
            services = ("ISVA",) if role == "provider" else ()
            code = "RCC" if role == "provider" else None
            uid = add_user(
                app, f"Org {org.key}", f"{role}@{org.key.lower()}.org", role, services, code
            )
            with w.store.session() as db:
                u = db.get(User, uid)
                db.expunge(u)
            org.users[role] = u
        _objects(w, org)
    jobs = app.state.needsled.jobs
    # record background runs instead of running them (they are tested in test_web_flows)
    jobs.submit = lambda rid, *a, **k: w.started.append(("report", rid))  # type: ignore[method-assign]
    jobs.submit_plan = lambda pid, *a, **k: w.started.append(("plan", pid))  # type: ignore[method-assign]
    yield w
    app.state.needsled.models.shutdown()
    app.state.needsled.store.close()


# the rules -----------------------------------------------------------------------------------

Req = dict[str, Any]
Make = Callable[[World, Org, str], Req]


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]  # roles (of the object's organisation) that may
    make: Make  # the request, for an actor role on an organisation's objects
    public: bool = False  # no sign-in needed
    cross: bool = True  # names an object: also tried on the other organisation's


MANAGERS = frozenset({"admin", "commissioner"})
MODELLERS = frozenset({"admin", "commissioner", "provider"})
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})


def kind_for(role: str) -> str:
    """The model a role works on: a provider's own (ISVA only), else the full one."""
    return "isva" if role == "provider" else "full"


def scenario_for(role: str) -> str:
    return {"provider": "shared", "viewer": "published"}.get(role, "plain")


def model_id(w: World, o: Org, role: str) -> int:
    return o.models[kind_for(role)].id


def scenario_id(w: World, o: Org, role: str) -> int:
    return o.scenarios[scenario_for(role)].id


def get(url: str) -> Req:
    return {"method": "GET", "url": url}


def form(url: str, **data: Any) -> Req:
    return {"method": "POST", "url": url, "data": data}


def api(method: str, url: str, body: Any = None) -> Req:
    return {"method": method, "url": url, "json": body}


def _deletable_model(w: World, o: Org, role: str) -> int:
    uploader = role if role in MODELLERS else "commissioner"
    return w.fresh_model(o, uploader, kind_for(role))


def _deletable_scenario(w: World, o: Org, role: str) -> int:
    if role == "provider":
        return w.fresh_scenario(o, "isva", "provider")
    if role == "viewer":
        return w.fresh_scenario(o, "full", "commissioner", published=True)
    return w.fresh_scenario(o, "full", "commissioner")


def _shareable_scenario(w: World, o: Org, role: str) -> int:
    """A throwaway scenario the role can see (so that sharing it changes no fixture)."""
    flags = {"provider": {"shared_with_providers": True}, "viewer": {"published": True}}
    return w.fresh_scenario(o, "full", "commissioner", **flags.get(role, {}))


def _upload_files(w: World, role: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", ("model.zip", w.zips[kind_for(role)]))]


def _return_files(w: World, role: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", w.return_files[kind_for(role)])]


def _template_query(role: str) -> str:
    """A provider gets their own return; admins and commissioners name the provider."""
    return "quarter=2025-Q2" + ("" if role == "provider" else "&provider=DAS")


def return_id(w: World, o: Org, role: str) -> int:
    return o.returns[kind_for(role)].id


RULES: dict[tuple[str, str], Rule] = {
    # pages
    ("GET", "/"): Rule(EVERYONE, lambda w, o, r: get("/"), cross=False),
    ("GET", "/signin"): Rule(EVERYONE, lambda w, o, r: get("/signin"), public=True, cross=False),
    ("POST", "/signin"): Rule(
        EVERYONE,
        lambda w, o, r: form("/signin", email=f"viewer@{o.key.lower()}.org", password=PASSWORD),
        public=True,
        cross=False,
    ),
    ("POST", "/signout"): Rule(EVERYONE, lambda w, o, r: form("/signout"), cross=False),
    ("POST", "/display"): Rule(
        EVERYONE, lambda w, o, r: form("/display", size="large"), public=True, cross=False
    ),
    ("GET", "/models"): Rule(MODELLERS, lambda w, o, r: get("/models"), cross=False),
    ("POST", "/models"): Rule(
        MODELLERS,
        lambda w, o, r: {
            "method": "POST",
            "url": "/models",
            "data": {"name": f"up {w.n()}"},
            "files": _upload_files(w, r),
        },
        cross=False,
    ),
    ("GET", "/models/{model_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/models/{model_id(w, o, r)}")
    ),
    ("POST", "/models/{model_id}/delete"): Rule(
        MODELLERS, lambda w, o, r: form(f"/models/{_deletable_model(w, o, r)}/delete", confirm="on")
    ),
    ("GET", "/models/{model_id}/explore"): Rule(
        MODELLERS, lambda w, o, r: get(f"/models/{model_id(w, o, r)}/explore")
    ),
    ("POST", "/models/{model_id}/scenarios"): Rule(
        MODELLERS,
        lambda w, o, r: form(
            f"/models/{model_id(w, o, r)}/scenarios",
            name=f"s{w.n()}",
            **{"lever:police_reports": "10"},
        ),
    ),
    ("GET", "/scenarios"): Rule(EVERYONE, lambda w, o, r: get("/scenarios"), cross=False),
    ("GET", "/scenarios/{scenario_id}"): Rule(
        EVERYONE, lambda w, o, r: get(f"/scenarios/{scenario_id(w, o, r)}")
    ),
    ("POST", "/scenarios/{scenario_id}/sharing"): Rule(
        MANAGERS,
        lambda w, o, r: form(f"/scenarios/{_shareable_scenario(w, o, r)}/sharing", published="on"),
    ),
    ("POST", "/scenarios/{scenario_id}/delete"): Rule(
        MODELLERS, lambda w, o, r: form(f"/scenarios/{_deletable_scenario(w, o, r)}/delete")
    ),
    ("GET", "/compare"): Rule(
        EVERYONE, lambda w, o, r: get(f"/compare?ids={scenario_id(w, o, r)}")
    ),
    ("GET", "/models/{model_id}/optimise"): Rule(
        MODELLERS, lambda w, o, r: get(f"/models/{model_id(w, o, r)}/optimise")
    ),
    ("POST", "/models/{model_id}/optimise"): Rule(
        MODELLERS,
        lambda w, o, r: form(f"/models/{model_id(w, o, r)}/optimise", curve_steps="0"),
    ),
    ("GET", "/plans/{plan_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/plans/{o.plans[kind_for(r)].id}")
    ),
    ("POST", "/models/{model_id}/reports"): Rule(
        MODELLERS, lambda w, o, r: form(f"/models/{model_id(w, o, r)}/reports")
    ),
    ("GET", "/reports/{report_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/reports/{o.reports[kind_for(r)].id}")
    ),
    ("GET", "/reports/{report_id}/files/{name:path}"): Rule(
        MODELLERS,
        lambda w, o, r: get(f"/reports/{o.reports[kind_for(r)].id}/files/report.html"),
    ),
    ("GET", "/returns"): Rule(MODELLERS, lambda w, o, r: get("/returns"), cross=False),
    ("GET", "/models/{model_id}/returns"): Rule(
        MODELLERS, lambda w, o, r: get(f"/models/{model_id(w, o, r)}/returns")
    ),
    ("POST", "/models/{model_id}/returns"): Rule(
        MODELLERS,
        lambda w, o, r: {
            "method": "POST",
            "url": f"/models/{model_id(w, o, r)}/returns",
            "files": _return_files(w, r),
        },
    ),
    ("GET", "/models/{model_id}/returns/template"): Rule(
        MODELLERS,
        lambda w, o, r: get(f"/models/{model_id(w, o, r)}/returns/template?{_template_query(r)}"),
    ),
    ("GET", "/models/{model_id}/returns/outcomes/{name}"): Rule(
        MODELLERS,
        lambda w, o, r: get(f"/models/{model_id(w, o, r)}/returns/outcomes/journeys.csv"),
    ),
    ("GET", "/returns/{return_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/returns/{return_id(w, o, r)}")
    ),
    ("GET", "/admin/users"): Rule(ADMIN, lambda w, o, r: get("/admin/users"), cross=False),
    ("POST", "/admin/users"): Rule(
        ADMIN,
        lambda w, o, r: form(
            "/admin/users", email=f"new{w.n()}@x.org", password=PASSWORD, role="viewer"
        ),
        cross=False,
    ),
    ("POST", "/admin/users/{user_id}"): Rule(
        ADMIN, lambda w, o, r: form(f"/admin/users/{w.fresh_user(o)}", role="viewer")
    ),
    ("GET", "/admin/audit"): Rule(ADMIN, lambda w, o, r: get("/admin/audit"), cross=False),
    ("GET", "/tokens"): Rule(EVERYONE, lambda w, o, r: get("/tokens"), cross=False),
    ("POST", "/tokens"): Rule(EVERYONE, lambda w, o, r: form("/tokens", name="t"), cross=False),
    ("POST", "/tokens/{token_id}/delete"): Rule(
        EVERYONE,
        lambda w, o, r: form(f"/tokens/{w.fresh_token(o, r if r in ROLES else 'viewer')}/delete"),
    ),
    ("GET", "/vendor/vega-{digest}.js"): Rule(
        EVERYONE, lambda w, o, r: get(w.app.state.vega_url()), public=True, cross=False
    ),
    # the JSON API
    ("GET", "/api/openapi.json"): Rule(
        EVERYONE, lambda w, o, r: get("/api/openapi.json"), public=True, cross=False
    ),
    ("POST", "/api/session"): Rule(
        EVERYONE,
        lambda w, o, r: api(
            "POST", "/api/session", {"email": f"viewer@{o.key.lower()}.org", "password": PASSWORD}
        ),
        public=True,
        cross=False,
    ),
    ("GET", "/api/session"): Rule(EVERYONE, lambda w, o, r: get("/api/session"), cross=False),
    ("DELETE", "/api/session"): Rule(
        EVERYONE, lambda w, o, r: api("DELETE", "/api/session"), cross=False
    ),
    ("GET", "/api/me"): Rule(EVERYONE, lambda w, o, r: get("/api/me"), cross=False),
    ("GET", "/api/models"): Rule(MODELLERS, lambda w, o, r: get("/api/models"), cross=False),
    ("POST", "/api/models"): Rule(
        MODELLERS,
        lambda w, o, r: {"method": "POST", "url": "/api/models", "files": _upload_files(w, r)},
        cross=False,
    ),
    ("GET", "/api/models/{model_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/models/{model_id(w, o, r)}")
    ),
    ("DELETE", "/api/models/{model_id}"): Rule(
        MODELLERS, lambda w, o, r: api("DELETE", f"/api/models/{_deletable_model(w, o, r)}")
    ),
    ("GET", "/api/models/{model_id}/levers"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/models/{model_id(w, o, r)}/levers")
    ),
    ("POST", "/api/models/{model_id}/evaluate"): Rule(
        MODELLERS,
        lambda w, o, r: api(
            "POST",
            f"/api/models/{model_id(w, o, r)}/evaluate",
            {"settings": {"police_reports": 10}, "mode": "preview"},
        ),
    ),
    ("GET", "/api/scenarios"): Rule(EVERYONE, lambda w, o, r: get("/api/scenarios"), cross=False),
    ("POST", "/api/scenarios"): Rule(
        MODELLERS,
        lambda w, o, r: api(
            "POST",
            "/api/scenarios",
            {"model_id": model_id(w, o, r), "name": f"s{w.n()}", "settings": {"police_reports": 5}},
        ),
    ),
    ("GET", "/api/scenarios/{scenario_id}"): Rule(
        EVERYONE, lambda w, o, r: get(f"/api/scenarios/{scenario_id(w, o, r)}")
    ),
    ("PATCH", "/api/scenarios/{scenario_id}"): Rule(
        MANAGERS,
        lambda w, o, r: api(
            "PATCH", f"/api/scenarios/{_shareable_scenario(w, o, r)}", {"published": True}
        ),
    ),
    ("DELETE", "/api/scenarios/{scenario_id}"): Rule(
        MODELLERS, lambda w, o, r: api("DELETE", f"/api/scenarios/{_deletable_scenario(w, o, r)}")
    ),
    ("GET", "/api/scenarios/{scenario_id}/results"): Rule(
        EVERYONE,
        lambda w, o, r: get(f"/api/scenarios/{scenario_id(w, o, r)}/results"),
    ),
    ("GET", "/api/compare"): Rule(
        EVERYONE, lambda w, o, r: get(f"/api/compare?ids={scenario_id(w, o, r)}")
    ),
    ("POST", "/api/models/{model_id}/plans"): Rule(
        MODELLERS,
        lambda w, o, r: api("POST", f"/api/models/{model_id(w, o, r)}/plans", {"curve_steps": 0}),
    ),
    ("GET", "/api/plans/{plan_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/plans/{o.plans[kind_for(r)].id}")
    ),
    ("POST", "/api/models/{model_id}/reports"): Rule(
        MODELLERS, lambda w, o, r: api("POST", f"/api/models/{model_id(w, o, r)}/reports")
    ),
    ("GET", "/api/models/{model_id}/reports"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/models/{model_id(w, o, r)}/reports")
    ),
    ("GET", "/api/reports/{report_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/reports/{o.reports[kind_for(r)].id}")
    ),
    ("GET", "/api/reports/{report_id}/files/{name:path}"): Rule(
        MODELLERS,
        lambda w, o, r: get(f"/api/reports/{o.reports[kind_for(r)].id}/files/report.html"),
    ),
    ("GET", "/api/models/{model_id}/returns"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/models/{model_id(w, o, r)}/returns")
    ),
    ("POST", "/api/models/{model_id}/returns"): Rule(
        MODELLERS,
        lambda w, o, r: {
            "method": "POST",
            "url": f"/api/models/{model_id(w, o, r)}/returns",
            "files": _return_files(w, r),
        },
    ),
    ("GET", "/api/models/{model_id}/returns/template"): Rule(
        MODELLERS,
        lambda w, o, r: get(
            f"/api/models/{model_id(w, o, r)}/returns/template?{_template_query(r)}"
        ),
    ),
    ("GET", "/api/models/{model_id}/returns/outcomes"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/models/{model_id(w, o, r)}/returns/outcomes")
    ),
    ("GET", "/api/returns/{return_id}"): Rule(
        MODELLERS, lambda w, o, r: get(f"/api/returns/{return_id(w, o, r)}")
    ),
    ("GET", "/api/users"): Rule(ADMIN, lambda w, o, r: get("/api/users"), cross=False),
    ("POST", "/api/users"): Rule(
        ADMIN,
        lambda w, o, r: api(
            "POST",
            "/api/users",
            {"email": f"n{w.n()}@x.org", "password": PASSWORD, "role": "viewer"},
        ),
        cross=False,
    ),
    ("PATCH", "/api/users/{user_id}"): Rule(
        ADMIN, lambda w, o, r: api("PATCH", f"/api/users/{w.fresh_user(o)}", {"role": "viewer"})
    ),
    ("GET", "/api/audit"): Rule(ADMIN, lambda w, o, r: get("/api/audit"), cross=False),
    ("GET", "/api/tokens"): Rule(EVERYONE, lambda w, o, r: get("/api/tokens"), cross=False),
    ("POST", "/api/tokens"): Rule(
        EVERYONE, lambda w, o, r: api("POST", "/api/tokens", {"name": "t"}), cross=False
    ),
    ("DELETE", "/api/tokens/{token_id}"): Rule(
        EVERYONE,
        lambda w, o, r: api(
            "DELETE", f"/api/tokens/{w.fresh_token(o, r if r in ROLES else 'viewer')}"
        ),
    ),
}


def _walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included router
        if inner is not None:
            yield from _walk(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            continue  # /static: files, checked in test_static_files_are_public_and_plain
        elif isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    yield method, prefix + route.path


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the application answers, from its own route table."""
    found = set(_walk(app.routes))
    assert len(found) > 40  # the walk found the included routers' routes
    return found


def test_every_route_has_a_rule(world: World) -> None:
    routes = app_routes(world.app)
    assert routes - RULES.keys() == set(), "new routes need a rule in RULES"
    assert RULES.keys() - routes == set(), "rules for routes that no longer exist"


# running a case ------------------------------------------------------------------------------


def _session(w: World, org: Org, role: str) -> tuple[TestClient, str]:
    c = client(w.app)
    if role == "anonymous":
        return c, csrf_of(c.get("/signin").text)
    r = c.post(
        "/api/session", json={"email": f"{role}@{org.key.lower()}.org", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    return c, r.json()["csrf_token"]


def _send(c: TestClient, csrf: str | None, req: Req) -> Any:
    req = dict(req)
    method, url = req.pop("method"), req.pop("url")
    if method != "GET" and csrf is not None:
        if "data" in req or "files" in req:
            req["data"] = {**(req.get("data") or {}), "csrf_token": csrf}
        else:
            req["headers"] = {"X-CSRF-Token": csrf}
        if req.get("json") is None:
            req.pop("json", None)
    return c.request(method, url, follow_redirects=False, **req)


# Targets: "own", the actor's kind of object in their organisation; "other", the same in
# the other organisation; "hidden", for a provider or a viewer, the objects of their own
# organisation that a commissioner works on (the full model with services not theirs, a
# scenario neither shared nor published, a commissioner's report, plan and token).
SCOPED = ("provider", "viewer")


def _targets(rule: Rule, actor: str) -> tuple[str, ...]:
    if not rule.cross or actor == "anonymous":
        return ("own",)
    return ("own", "other", "hidden") if actor in SCOPED else ("own", "other")


def _cases() -> list[tuple[str, str, str, str]]:
    return [
        (method, path, actor, target)
        for (method, path), rule in RULES.items()
        for actor in ACTORS
        for target in _targets(rule, actor)
    ]


@pytest.mark.parametrize(("method", "path", "actor", "target"), _cases())
def test_authorisation(world: World, method: str, path: str, actor: str, target: str) -> None:
    rule = RULES[(method, path)]
    home, other = world.orgs["A"], world.orgs["B"]
    objects = other if target == "other" else home
    # the request is built for the actor's role (their kind of model, scenario, ...), or for
    # a commissioner's (what a provider or viewer must not reach within their organisation)
    as_role = actor if actor in ROLES and target != "hidden" else "commissioner"
    req = rule.make(world, objects, as_role)
    c, csrf = _session(world, home, actor)
    with c:
        r = _send(c, csrf, req)
    where = f"{method} {req['url']} as {actor} on {target} objects: {r.status_code} {r.text[:300]}"
    if actor == "anonymous" and not rule.public:
        if path.startswith("/api"):
            assert r.status_code == 401, where
        else:
            assert r.status_code == 303, where
            assert r.headers["location"].startswith("/signin"), where
        return
    allowed = rule.public or (actor in rule.allowed and target == "own")
    if allowed:
        assert r.status_code in OK, where
        if r.status_code == 303 and not path.startswith(("/signin", "/display", "/signout")):
            assert not r.headers["location"].startswith("/signin"), where
    else:
        assert r.status_code in DENIED, where
        if target == "other" and actor in rule.allowed:
            assert r.status_code == 404, where  # not even "it exists but is not yours"


UNSAFE = sorted(k for k in RULES if k[0] in ("POST", "PUT", "PATCH", "DELETE"))


@pytest.mark.parametrize("token", [None, "forged"])
@pytest.mark.parametrize(("method", "path"), UNSAFE)
def test_every_write_needs_the_csrf_token(
    world: World, method: str, path: str, token: str | None
) -> None:
    """Each state-changing route refuses a request without the session's CSRF token (the one
    exception, JSON sign-in to the API, refuses anything but JSON)."""
    a = world.orgs["A"]
    req = RULES[(method, path)].make(world, a, "admin")
    c, _csrf = _session(world, a, "admin")
    with c:
        if (method, path) == ("POST", "/api/session"):
            r = c.post("/api/session", data=req["json"])  # a form, as another site could send
        else:
            r = _send(c, token, req)
    assert r.status_code == 403, (method, req["url"], r.status_code, r.text[:200])
    assert "security token" in r.text or "JSON" in r.text


# what lists show ------------------------------------------------------------------------------

LISTS = (
    "/",
    "/models",
    "/returns",
    "/scenarios",
    "/admin/users",
    "/admin/audit",
    "/tokens",
    "/api/models",
    "/api/scenarios",
    "/api/users",
    "/api/audit",
    "/api/tokens",
)


# what each list shows of organisation A when the role may read it (so that the test below
# cannot pass on an empty list)
OWN_MARK = {
    "/": MARK["A"],
    "/models": MARK["A"],
    "/returns": MARK["A"],
    "/scenarios": MARK["A"],
    "/admin/users": "@a.org",
    "/admin/audit": "@a.org",
    "/api/models": MARK["A"],
    "/api/scenarios": MARK["A"],
    "/api/users": "@a.org",
    "/api/audit": "@a.org",
}
READS = {  # the lists each role may read (others answer 403)
    "admin": set(LISTS),
    "commissioner": set(LISTS) - {"/admin/users", "/admin/audit", "/api/users", "/api/audit"},
    "provider": set(LISTS) - {"/admin/users", "/admin/audit", "/api/users", "/api/audit"},
    "viewer": {"/", "/scenarios", "/tokens", "/api/scenarios", "/api/tokens"},  # no returns
}


@pytest.mark.parametrize("role", ROLES)
def test_no_list_shows_another_organisations_objects(world: World, role: str) -> None:
    c, _ = _session(world, world.orgs["A"], role)
    with c:
        for path in LISTS:
            r = c.get(path, follow_redirects=False)
            assert r.status_code == (200 if path in READS[role] else 403), (path, r.status_code)
            assert MARK["B"] not in r.text, (role, path)
            assert "@b.org" not in r.text, (role, path)
            if path in READS[role] and path in OWN_MARK:
                assert OWN_MARK[path] in r.text, (role, path)  # not vacuous: A's are there


def test_providers_and_viewers_see_only_their_part(world: World) -> None:
    a = world.orgs["A"]
    c, _ = _session(world, a, "provider")
    with c:
        names = {m["name"] for m in c.get("/api/models").json()}
        scen = {s["name"] for s in c.get("/api/scenarios").json()}
    assert f"{MARK['A']} full" not in names
    assert f"{MARK['A']} isva" in names
    assert f"{MARK['A']} shared" in scen
    assert f"{MARK['A']} own" in scen
    assert f"{MARK['A']} plain" not in scen
    assert f"{MARK['A']} published" not in scen
    c, _ = _session(world, a, "viewer")
    with c:
        scen = {s["name"] for s in c.get("/api/scenarios").json()}
        assert c.get("/api/models").status_code == 403
    assert scen >= {f"{MARK['A']} published"}
    assert not scen & {f"{MARK['A']} {k}" for k in ("plain", "shared", "own")}


def test_ids_in_bodies_and_queries_are_checked_too(world: World) -> None:
    a, b = world.orgs["A"], world.orgs["B"]
    c, csrf = _session(world, a, "commissioner")
    h = {"X-CSRF-Token": csrf}
    with c:
        body = {"model_id": b.models["full"].id, "name": "x", "settings": {}}
        assert c.post("/api/scenarios", json=body, headers=h).status_code == 404
        mine, theirs = a.scenarios["plain"].id, b.scenarios["published"].id
        assert c.get(f"/api/compare?ids={mine},{theirs}").status_code == 404
        assert c.get(f"/compare?ids={theirs}").status_code == 404
        explore = f"/models/{a.models['full'].id}/explore?from={theirs}"
        assert c.get(explore).status_code == 404


def test_background_runs_were_started_only_when_allowed(world: World) -> None:
    """Every report or plan the matrix started belongs to organisation A and was asked for
    by a role that may."""
    with world.store.session() as db:
        for kind, rid in world.started:
            row = db.get(Report if kind == "report" else PlanRun, rid)
            assert row is not None
            requester = db.get(User, row.requested_by_id)
            assert requester is not None
            assert requester.role in MODELLERS
            assert (
                row.organisation_id
                == requester.organisation_id
                == world.orgs["A"].users["admin"].organisation_id
            )


def test_static_files_are_public_and_plain(world: World) -> None:
    with client(world.app) as c:
        for name in ("app.css", "charts.js", "explore.js"):
            r = c.get(f"/static/{name}")
            assert r.status_code == 200
            assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get("/static/../db.py").status_code == 404


def test_file_names_cannot_leave_the_report_folder(world: World) -> None:
    a = world.orgs["A"]
    c, _ = _session(world, a, "commissioner")
    rid = a.reports["full"].id
    with c:
        for name in ("../1/report.html", "..%2F..%2Fsecret_key", "/etc/passwd", "summary.csv"):
            assert c.get(f"/api/reports/{rid}/files/{name}").status_code == 404, name


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_uploaded_archives_are_never_sent_back(world: World, tmp_path: Path) -> None:
    a = world.orgs["A"]
    c, _ = _session(world, a, "commissioner")
    with c:
        body = c.get(f"/api/models/{a.models['full'].id}").json()
    assert "archive" not in body
    assert body["sha256"] == _digest(world.zips["full"])


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("provider", "/models/{full}"),
        ("provider", "/api/models/{full}"),
        ("provider", "/models/{full}/explore"),
        ("provider", "/api/reports/{full_report}"),
        ("provider", "/plans/{full_plan}"),
        ("provider", "/scenarios/{plain}"),
        ("provider", "/api/scenarios/{published}"),
        ("provider", "/models/{full}/returns"),
        ("provider", "/api/models/{full}/returns/outcomes"),
        ("provider", "/returns/{full_return}"),
        ("provider", "/api/returns/{full_return}"),
        ("viewer", "/scenarios/{plain}"),
        ("viewer", "/api/scenarios/{shared}/results"),
        ("viewer", "/api/scenarios/{own}"),
    ],
)
def test_within_the_organisation_what_a_role_may_not_see_is_not_there(
    world: World, role: str, path: str
) -> None:
    a = world.orgs["A"]
    url = path.format(
        full=a.models["full"].id,
        full_report=a.reports["full"].id,
        full_plan=a.plans["full"].id,
        full_return=a.returns["full"].id,
        **{k: sc.id for k, sc in a.scenarios.items()},
    )
    c, _ = _session(world, a, role)
    with c:
        assert c.get(url, follow_redirects=False).status_code == 404, url


API_OBJECT_ROUTES = sorted(
    k for k, rule in RULES.items() if k[1].startswith("/api/") and rule.cross
)


def _token(world: World, org: Org, role: str) -> str:
    """A personal API token of the role's user in the organisation (its value)."""
    value = f"nsl_matrix-{org.key}-{role}-{world.n()}"
    with world.store.session() as db:
        db.add(
            ApiToken(
                user_id=org.users[role].id,
                name="matrix",
                token_hash=hash_token(value),
                expires_at=utcnow().replace(year=utcnow().year + 1),
            )
        )
    return value


@pytest.mark.parametrize(("method", "path"), API_OBJECT_ROUTES)
def test_api_tokens_reach_only_their_organisation(world: World, method: str, path: str) -> None:
    """With a personal API token (no session, no CSRF token) the same rules hold: the other
    organisation's admin gets 404 for every object of this one; this one's admin succeeds."""
    a, b = world.orgs["A"], world.orgs["B"]
    rule = RULES[(method, path)]
    with client(world.app) as c:
        for org, expected in ((b, {404}), (a, OK)):
            req = dict(rule.make(world, a, "admin"))
            m, url = req.pop("method"), req.pop("url")
            if req.get("json") is None:
                req.pop("json", None)
            bearer = {"Authorization": f"Bearer {_token(world, org, 'admin')}"}
            r = c.request(m, url, headers=bearer, follow_redirects=False, **req)
            assert r.status_code in expected, (org.key, m, url, r.status_code, r.text[:200])


# every page: keyboard and screen-reader basics -------------------------------------------------


class _Page(HTMLParser):
    """What the accessibility checks need from a page: controls, labels, ids, headings."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.controls: list[dict[str, str]] = []
        self.labels: dict[str, str] = {}  # for -> text
        self.h1 = 0
        self.first_link: dict[str, str] | None = None
        self.lang = ""
        self.title = ""
        self._label: str | None = None
        self._text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "title":
            self._in_title = True
        if tag == "h1":
            self.h1 += 1
        if tag == "a" and self.first_link is None:
            self.first_link = a
        if tag in ("input", "select", "textarea") and a.get("type") not in (
            "hidden",
            "submit",
            "button",
        ):
            self.controls.append({"tag": tag, **a})
        if tag == "label":
            self._label, self._text = a.get("for", ""), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            self.labels[self._label] = " ".join("".join(self._text).split())
            self._label = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data


PAGES = sorted(
    k[1]
    for k, rule in RULES.items()
    if k[0] == "GET"
    and not k[1].startswith(("/api", "/vendor", "/reports/{report_id}/files"))
    and not k[1].startswith(
        ("/models/{model_id}/returns/template", "/models/{model_id}/returns/outcomes")
    )  # downloads
)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_labelled_and_keyboard_ready(world: World, path: str) -> None:
    """Each page (as an admin, with objects to show): a language and a title, one main
    heading, the skip link first, unique ids, and every form control labelled with a name
    of its own (a <label for> or aria-label), so that a screen reader can tell them apart."""
    a = world.orgs["A"]
    actor = "anonymous" if path == "/signin" else "admin"
    req = RULES[("GET", path)].make(world, a, "commissioner")
    c, _ = _session(world, a, actor)
    with c:
        r = c.get(req["url"], follow_redirects=False)
    assert r.status_code == 200, (path, r.status_code)
    page = _Page()
    page.feed(r.text)
    assert page.lang == "en-GB"
    assert page.title.strip()
    assert page.h1 == 1, path
    assert page.first_link is not None
    assert page.first_link.get("href") == "#main"
    assert page.first_link.get("class") == "skip"
    assert "main" in page.ids
    assert len(page.ids) == len(set(page.ids)), sorted(i for i in page.ids if page.ids.count(i) > 1)
    names = []
    for ctl in page.controls:
        name = ctl.get("aria-label") or page.labels.get(ctl.get("id", ""), "")
        assert name, (path, ctl)
        names.append(name)
    assert len(names) == len(set(names)), (path, sorted(n for n in names if names.count(n) > 1))
    assert all(f in page.ids for f in page.labels), (path, page.labels)


def test_focus_is_visible_and_the_skip_link_appears() -> None:
    css = (Path(__file__).resolve().parents[2] / "src/needsled/web/static/app.css").read_text()
    focus = re.search(r"([^{}]*:focus[^{}]*)\{([^}]*)\}", css)
    assert focus is not None
    for selector in ("a:focus", "button:focus", "input:focus", "select:focus"):
        assert selector in focus.group(1)
    assert "outline: 3px solid" in focus.group(2)
    assert re.search(r"\.skip:focus\s*\{[^}]*left:\s*0", css)

"""`needsled serve` (the web application) and `needsled users ...` (its accounts).

Registered in cli.py as ``app.command("serve")(serve)`` and ``app.add_typer(users_app)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from needsled.web.store import Store

__all__ = ["serve", "users_app"]

console = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="Folder for the store (SQLite), the cookie secret, reports and caches",
        envvar="NEEDSLED_DATA_DIR",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Use this database instead of SQLite in the data folder, e.g. "
        "postgresql+psycopg://user@host/needsled (or set NEEDSLED_DATABASE_URL, which keeps "
        "a password off the command line)",
        envvar="NEEDSLED_DATABASE_URL",
    ),
]
DEFAULT_DIR = Path("needsled-data")


def _store(data_dir: Path, database_url: str | None) -> Store:
    from needsled.web.config import WebConfig
    from needsled.web.store import Store

    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
    return Store(WebConfig(data_dir=data_dir, database_url=database_url).url)


def _first_admin_hint(data_dir: Path, database_url: str | None) -> str:
    if database_url:
        from sqlalchemy.engine import make_url

        shown = make_url(database_url).render_as_string(hide_password=True)
        where = f"--database-url '{shown}'"
    else:
        where = f"--data-dir {data_dir}"
    return (
        "There are no users yet. Create the first admin (you are asked for a password):\n"
        f"  needsled users add {where} --org 'Your organisation' "
        "--email you@example.org --role admin"
    )


def serve(
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1: this computer only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port")] = 8000,
    insecure_cookies: Annotated[
        bool,
        typer.Option(
            "--insecure-cookies",
            help="Send cookies over plain http to other computers (development on a trusted "
            "network only; never on the internet)",
        ),
    ] = False,
    replicates: Annotated[
        int,
        typer.Option(
            "--replicates", min=10, max=5000, help="Monte Carlo replicates behind each explorer"
        ),
    ] = 200,
) -> None:
    """Start the web application: scenario explorer, models, scenarios, optimiser, reports."""
    import uvicorn

    from needsled.web.app import create_app
    from needsled.web.config import WebConfig

    if insecure_cookies:
        console.print(
            "[bold yellow]Warning:[/] --insecure-cookies: session cookies will be sent over "
            "plain http, where anyone on the network can read them. Use it only for "
            "development on a network you trust; put the application behind https otherwise.",
            highlight=False,
        )
    config = WebConfig(
        data_dir=data_dir,
        database_url=database_url,
        insecure_cookies=insecure_cookies,
        replicates=replicates,
    )
    _plain_pages()
    try:
        app = create_app(config)
    except ValueError as exc:  # a bad secret or database URL: say it plainly
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    if app.state.needsled.store.user_count() == 0:
        typer.echo(_first_admin_hint(data_dir, database_url))
    typer.echo(f"needsled is at http://{host}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        log_level="info",
        server_header=False,
    )


users_app = typer.Typer(name="users", help="Accounts of the web application.", no_args_is_help=True)


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            console.print(f"[red]Cannot read {password_file}: {exc.strerror}[/]", highlight=False)
            raise typer.Exit(1) from None
        return lines[0] if lines else ""
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add(
    org: Annotated[str, typer.Option("--org", help="Organisation (made if it is new)")],
    email: Annotated[str, typer.Option("--email", help="The user's email address")],
    role: Annotated[str, typer.Option("--role", help="admin, commissioner, provider or viewer")],
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            help="For a provider without a provider code: a service code they deliver, in "
            "every area (repeat)",
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="For a provider: their code in the models' directory table (as in 'needsled "
            "returns template --provider'); they see their own returns, and the services and "
            "areas the directory lists for the code",
        ),
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the password from the first line of a file"),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a user (the password is asked for, or read from --password-file)."""
    from needsled.web.config import WebConfig
    from needsled.web.store import UserError, check_user, normalise_email

    problems = check_user(normalise_email(email), role, service or [], provider)
    if problems:
        for p in problems:
            console.print(f"[red]-[/] {p}", highlight=False)
        raise typer.Exit(1)
    password = _read_password(password_file)
    store = _store(data_dir, database_url)
    try:
        with store.session() as db:
            organisation = store.organisation(db, org, create=True)
            user = store.add_user(
                db,
                organisation=organisation,
                email=email,
                password=password,
                role=role,
                services=service or [],
                hasher=WebConfig(data_dir=data_dir).hasher,
                provider=provider,
            )
            store.audit(
                db,
                "permission change",
                email="(command line)",
                organisation_id=organisation.id,
                obj=f"user {user.id} {user.email}",
                outcome=f"added as {role}"
                + (f" of {', '.join(service)}" if service else "")
                + (f", provider code {provider}" if provider else ""),
                ip="local",
            )
            summary = f"Added {user.email} as {role} of {organisation.name}."
    except UserError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(summary)


@users_app.command("list")
def list_users(data_dir: DataDir = DEFAULT_DIR, database_url: DatabaseUrl = None) -> None:
    """List every user: organisation, email, role, provider code, services, active."""
    from sqlalchemy import select

    from needsled.web.db import Organisation, User

    store = _store(data_dir, database_url)
    try:
        with store.session() as db:
            rows = db.execute(
                select(
                    Organisation.name,
                    User.email,
                    User.role,
                    User.provider,
                    User.services,
                    User.active,
                )
                .join(User, User.organisation_id == Organisation.id)
                .order_by(Organisation.name, User.email)
            ).all()
    finally:
        store.close()
    if not rows:
        typer.echo(_first_admin_hint(data_dir, database_url))
        return
    for org, email, role, code, services, active in rows:
        extra = f" ({', '.join(services)})" if services else ""
        extra = f" [provider {code}]{extra}" if code else extra
        state = "" if active else " [inactive]"
        typer.echo(f"{org}\t{email}\t{role}{extra}{state}")


@users_app.command("password")
def password(
    email: Annotated[str, typer.Option("--email", help="The user's email address")],
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the password from the first line of a file"),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password for a user (and sign them out everywhere: their sessions and their
    personal API tokens end)."""
    from sqlalchemy import delete, select

    from needsled.web.config import WebConfig
    from needsled.web.db import ApiToken, Session, User
    from needsled.web.store import MIN_PASSWORD, normalise_email

    new = _read_password(password_file)
    if len(new) < MIN_PASSWORD:
        console.print(f"[red]Use a password of at least {MIN_PASSWORD} characters.[/]")
        raise typer.Exit(1)
    store = _store(data_dir, database_url)
    try:
        with store.session() as db:
            user = db.scalar(select(User).where(User.email == normalise_email(email)))
            if user is None:
                console.print(f"[red]No user has the email {email}.[/]", highlight=False)
                raise typer.Exit(1)
            user.password_hash = WebConfig(data_dir=data_dir).hasher.hash(new)
            db.execute(delete(Session).where(Session.user_id == user.id))
            db.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
            store.audit(
                db,
                "permission change",
                email="(command line)",
                organisation_id=user.organisation_id,
                obj=f"user {user.id} {user.email}",
                outcome="password set; sessions and API tokens ended",
                ip="local",
            )
    finally:
        store.close()
    typer.echo(
        f"New password set for {normalise_email(email)}; they are signed out everywhere "
        "(sessions and API tokens)."
    )


def _plain_pages() -> None:
    """Plain memory pages for NumPy's arrays in the server's process, unless
    ``NUMPY_MADVISE_HUGEPAGE`` says otherwise.

    NumPy asks the kernel for huge pages for arrays of 4 MB or more (``madvise``); where the
    kernel makes them when first touched and compacts memory to find them ("defrag: madvise",
    as here), a server that makes and frees arrays of tens of MB all day waits for that: on
    the 2-core machine a demand lever's full result spent 70 ms making the engine's inputs
    with huge pages and 30 ms without (``benchmarks/README.md``).
    """
    import numpy as np

    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    if setter is not None and "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        setter(False)

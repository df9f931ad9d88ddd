"""Settings of the web application, and the secret that signs its cookies.

The secret comes from ``NEEDSLED_SECRET_KEY`` when set (at least 32 characters), else from the
file ``secret_key`` in the data folder, created at first start with mode 600 (owner read and
write only). Keeping it in the data folder means sessions survive a restart; deleting the file
signs everyone out.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pwdlib import PasswordHash

__all__ = ["SECRET_ENV", "WebConfig", "load_secret", "sqlite_url"]

SECRET_ENV = "NEEDSLED_SECRET_KEY"
SECRET_FILE = "secret_key"
MIN_SECRET = 32
log = logging.getLogger("needsled.web")


def sqlite_url(data_dir: Path) -> str:
    """The embedded store: one SQLite file in the data folder."""
    return f"sqlite:///{(data_dir / 'needsled.sqlite3').resolve()}"


def load_secret(data_dir: Path) -> str:
    """The signing secret: from the environment, or the data folder's file (made if missing)."""
    given = os.environ.get(SECRET_ENV)
    if given is not None:
        if len(given) < MIN_SECRET:
            raise ValueError(
                f"{SECRET_ENV} is {len(given)} characters long; use at least {MIN_SECRET} random "
                "characters, e.g. from: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return given
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); set to 600", path, mode)
            path.chmod(0o600)
        text = path.read_text(encoding="ascii").strip()
        if len(text) < MIN_SECRET:
            raise ValueError(
                f"{path} holds a secret of {len(text)} characters; delete the file to have a new "
                "one made at the next start (everyone is then signed out)"
            ) from None
        return text
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


@dataclass
class WebConfig:
    """Everything the application needs to start.

    ``insecure_cookies`` drops the cookies' Secure flag everywhere (plain-http development
    on a network only); without it the flag is set on every response except plain http to a
    loopback address from a loopback client (see :func:`needsled.web.security.cookie_secure`).
    """

    data_dir: Path
    database_url: str | None = None
    secret_key: str | None = None
    insecure_cookies: bool = False
    replicates: int = 200
    seed: int = 20240401
    report_replicates: int = 200
    max_upload_bytes: int = 25 * 1024 * 1024
    session_hours: float = 12.0
    login_failures_allowed: int = 5
    login_window_minutes: int = 15
    explorer_cache_size: int = 4
    warm_explorers: bool = True  # build a model's explorer in the background once uploaded
    hasher: PasswordHash = field(default_factory=PasswordHash.recommended)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)

    def secret(self) -> str:
        if self.secret_key is None:
            self.secret_key = load_secret(self.data_dir)
        return self.secret_key

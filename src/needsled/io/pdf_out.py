"""The report as a PDF (``report.pdf``), drawn by WeasyPrint from the report's HTML.

The HTML is the report's own template rendered in its PDF form (charts as SVG images, no
script; :func:`needsled.report.render_html` with ``svgs``); its print CSS lays it out on
landscape A4. Nothing is fetched: the page holds everything, and any URL other than a
``data:`` URL is refused.

WeasyPrint needs the Pango text library from the operating system. Where it is missing,
:func:`load_weasyprint` raises :class:`PdfUnavailableError`, whose message says what to install,
so that callers can write everything else and tell the user plainly.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from types import ModuleType

from needsled.io.atomic import write_atomic

__all__ = ["INSTALL_HINT", "PdfUnavailableError", "load_weasyprint", "write_pdf"]

INSTALL_HINT = (
    "install the Pango text library WeasyPrint needs (Debian or Ubuntu: "
    "sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0; macOS: brew install pango), "
    "then run needsled report RUN_DIR --pdf"
)


class PdfUnavailableError(RuntimeError):
    """WeasyPrint cannot be loaded here, so no PDF can be written (the message says why)."""


def load_weasyprint() -> ModuleType:
    """The weasyprint module, or PdfUnavailableError naming what to install."""
    quiet = io.StringIO()  # WeasyPrint prints its own troubleshooting banner when it fails
    try:
        with contextlib.redirect_stdout(quiet):
            import weasyprint
    except (OSError, ImportError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PdfUnavailableError(
            f"No PDF: WeasyPrint cannot load ({reason}). To get the PDF, {INSTALL_HINT}."
        ) from None
    module: ModuleType = weasyprint
    return module


def write_pdf(html: str, path: str | Path) -> Path:
    """Write ``html`` as a PDF at ``path`` (through a temporary file)."""
    weasyprint = load_weasyprint()
    # the report embeds everything: only data: URLs are read, nothing goes over a network
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"])
    document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
    return write_atomic(path, document.write_pdf, keep_suffix=True)

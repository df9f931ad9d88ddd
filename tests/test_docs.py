"""The docs that are generated from the code must match it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from needsled.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_reference_matches_the_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    on_disk = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert result.output.strip() == on_disk.strip(), (
        "docs/reference.md is out of date: run `needsled schema > docs/reference.md`"
    )

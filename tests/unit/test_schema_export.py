"""The JSON Schemas in docs/schemas must match the pydantic models."""

from __future__ import annotations

from pathlib import Path

from schemas.export import render_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_exported_schemas_are_current() -> None:
    expected = render_schemas()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.json")}
    stale = sorted(name for name, text in expected.items() if on_disk.get(name) != text)
    extra = sorted(set(on_disk) - set(expected))
    fix = "run `stemedb-gate schemas export` and commit docs/schemas"
    assert not stale, f"stale or missing schema files {stale}: {fix}"
    assert not extra, f"schema files without a model {extra}: delete them"

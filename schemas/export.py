"""Export the JSON Schema of every wire record to a folder, one file per record."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.admin import AdminCommand, AdminEvent, AllowlistEntry, ThresholdsState
from schemas.assertion import Assertion
from schemas.breaker import BreakerSnapshot
from schemas.invalid import InvalidRecord
from schemas.quarantine import QuarantineItem
from schemas.verdict import RoutedAssertion, Verdict

RECORDS: dict[str, type[BaseModel]] = {
    "assertion": Assertion,
    "verdict": Verdict,
    "routed-assertion": RoutedAssertion,
    "invalid-record": InvalidRecord,
    "quarantine-item": QuarantineItem,
    "breaker-snapshot": BreakerSnapshot,
    "admin-command": AdminCommand,
    "admin-event": AdminEvent,
    "thresholds-state": ThresholdsState,
    "allowlist-entry": AllowlistEntry,
}


def render_schemas() -> dict[str, str]:
    """Return file name to JSON text for every record, exactly as ``export_schemas`` writes it."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in RECORDS.items()
    }


def export_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

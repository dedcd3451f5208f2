"""Local table stores survive a clean stop and are discarded after a crash."""

from __future__ import annotations

from pathlib import Path

from streams.worker import CLEAN_STOP_MARKER, discard_state_after_crash


def _stores(data_dir: Path) -> Path:
    store = data_dir / "v1" / "tables" / "agents-0.db"
    store.mkdir(parents=True)
    (store / "CURRENT").write_text("x")
    return store


def test_marker_keeps_stores_after_clean_stop(tmp_path: Path) -> None:
    store = _stores(tmp_path)
    (tmp_path / CLEAN_STOP_MARKER).write_text("stopped")

    assert discard_state_after_crash(tmp_path) is False
    assert store.exists()
    assert not (tmp_path / CLEAN_STOP_MARKER).exists()


def test_marker_missing_discards_stores(tmp_path: Path) -> None:
    store = _stores(tmp_path)

    assert discard_state_after_crash(tmp_path) is True
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []


def test_marker_empty_folder_is_first_start(tmp_path: Path) -> None:
    assert discard_state_after_crash(tmp_path) is False

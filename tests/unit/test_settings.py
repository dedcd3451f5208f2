"""Settings defaults, environment and TOML sources, and errors that name key and value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from streams import settings as settings_module
from streams.errors import ConfigError
from streams.settings import GateSettings, load_settings


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the host's STEMEDB_ variables and any /etc/stemedb/config.toml from each test."""
    for name in list(os.environ):
        if name.upper().startswith("STEMEDB_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(settings_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def value_of(settings: GateSettings, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(settings, section), key)


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [
        ("content_defense.quality_threshold", 0.6),
        ("content_defense.confidence_threshold", 0.85),
        ("content_defense.untrusted_confidence_threshold", 0.95),
        ("content_defense.duplicate_lookback_hours", 48),
        ("circuit_breaker.failure_rate_threshold", 0.3),
        ("circuit_breaker.min_requests", 20),
        ("circuit_breaker.timeout_seconds", 3600),
        ("circuit_breaker.max_submissions_per_minute", 50),
        ("admin_api.port", 18180),
        ("admin_api.review_port", 18188),
        ("kafka.topic_prefix", "stemedb."),
    ],
)
def test_settings_default(dotted: str, expected: Any) -> None:
    assert value_of(load_settings(None), dotted) == expected


def test_settings_env_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_QUALITY_THRESHOLD", "0.7")
    monkeypatch.setenv("STEMEDB_MIN_REQUESTS", "25")
    loaded = load_settings(None)

    assert loaded.content_defense.quality_threshold == 0.7
    assert loaded.circuit_breaker.min_requests == 25


def test_settings_env_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_CONTENT_DEFENSE__QUALITY_THRESHOLD", "0.8")

    assert load_settings(None).content_defense.quality_threshold == 0.8


def test_settings_env_nested_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_QUALITY_THRESHOLD", "0.7")
    monkeypatch.setenv("STEMEDB_CONTENT_DEFENSE__QUALITY_THRESHOLD", "0.8")

    assert load_settings(None).content_defense.quality_threshold == 0.8


def test_settings_toml_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        "[content_defense]\nquality_threshold = 0.7\n\n"
        "[circuit_breaker]\nmin_requests = 10\n\n"
        "[admin_api]\nport = 28180\n",
    )
    loaded = load_settings(path)

    assert loaded.content_defense.quality_threshold == 0.7
    assert loaded.content_defense.confidence_threshold == 0.85
    assert loaded.circuit_breaker.min_requests == 10
    assert loaded.admin_api.port == 28180


def test_settings_toml_from_env_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[circuit_breaker]\nmin_requests = 10\n")
    monkeypatch.setenv("STEMEDB_CONFIG", str(path))

    assert load_settings(None).circuit_breaker.min_requests == 10


def test_settings_env_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[content_defense]\nquality_threshold = 0.7\n")
    monkeypatch.setenv("STEMEDB_QUALITY_THRESHOLD", "0.9")

    assert load_settings(path).content_defense.quality_threshold == 0.9


def test_settings_overrides_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_QUALITY_THRESHOLD", "0.9")
    loaded = load_settings(None, content_defense={"quality_threshold": 0.5})

    assert loaded.content_defense.quality_threshold == 0.5


@pytest.mark.parametrize(
    ("overrides", "key", "value"),
    [
        pytest.param(
            {"content_defense": {"quality_threshold": 1.5}},
            "quality_threshold",
            "1.5",
            id="quality over 1",
        ),
        pytest.param(
            {"circuit_breaker": {"min_requests": 0}}, "min_requests", "0", id="min_requests 0"
        ),
        pytest.param(
            {"circuit_breaker": {"failure_rate_threshold": 0.0}},
            "failure_rate_threshold",
            "0.0",
            id="failure rate 0",
        ),
        pytest.param({"admin_api": {"port": 70000}}, "port", "70000", id="port over 65535"),
        pytest.param(
            {"circuit_breaker": {"timeout_seconds": 7200, "max_timeout_seconds": 60}},
            "max_timeout_seconds",
            "60",
            id="cap below timeout",
        ),
    ],
)
def test_settings_invalid_override(overrides: dict[str, Any], key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, **overrides)

    assert key in str(raised.value)
    assert value in str(raised.value)


def test_settings_invalid_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_QUALITY_THRESHOLD", "high")
    with pytest.raises(ConfigError) as raised:
        load_settings(None)

    assert "quality_threshold" in str(raised.value)
    assert "'high'" in str(raised.value)


def test_settings_invalid_toml_value(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[circuit_breaker]\ntimeout_seconds = -5\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert "timeout_seconds" in str(raised.value)
    assert "-5" in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param(
            "[content_defense]\nqualty_threshold = 0.7\n",
            "content_defense.qualty_threshold",
            id="misspelled key",
        ),
        pytest.param("[kafak]\npartitions = 3\n", "kafak", id="misspelled section"),
    ],
)
def test_settings_unknown_toml_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_toml(tmp_path, text))

    assert "unknown config key" in str(raised.value)
    assert key in str(raised.value)


def test_settings_missing_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert str(path) in str(raised.value)


def test_settings_malformed_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_toml(tmp_path, "[content_defense\n"))

    assert "not valid TOML" in str(raised.value)

"""Gate configuration: defaults, then a TOML file, then ``STEMEDB_`` environment variables.

Every key has a description, a unit where it has one, and bounds. Invalid values raise
:class:`ConfigError` naming the key and the value, so the process fails at start.

Environment variables take two forms. The flat form keeps the names operators already
use (``STEMEDB_QUALITY_THRESHOLD``); every key name is unique across sections, which
makes it unambiguous. The nested form names the section (``STEMEDB_CONTENT_DEFENSE__
QUALITY_THRESHOLD``) and wins when both are set.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from streams.errors import ConfigError

ENV_PREFIX = "STEMEDB_"
DEFAULT_CONFIG_PATH = Path("/etc/stemedb/config.toml")
CONFIG_PATH_ENV = "STEMEDB_CONFIG"


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
# Shown in place of a secret's value in error messages.
MASKED = "**********"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Comma-separated host:port list of Kafka brokers."
    )
    topic_prefix: str = Field(
        "stemedb.",
        pattern=r"^[A-Za-z0-9._-]*$",
        max_length=100,
        description="Prefix of every topic name, so one cluster can host several environments.",
    )
    partitions: int = Field(
        6, ge=1, le=1000, description="Partition count of every agent-keyed topic."
    )
    replication_factor: int = Field(1, ge=1, le=10, description="Replication factor of topics.")
    app_id: str = Field(
        "stemedb-gate",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust application id: the consumer group and the changelog topic prefix.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Kafka processing guarantee of the worker."
    )
    session_timeout_seconds: float = Field(
        30.0,
        ge=6.0,
        le=300.0,
        description="Seconds without a heartbeat after which the broker drops a worker from "
        "the group and reassigns its partitions.",
    )
    max_record_bytes: int = Field(
        65536,
        ge=1024,
        le=8 * 1024 * 1024,
        description="Largest accepted assertion record in bytes; larger ones are dead letters.",
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="Protocol of every connection to the brokers."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None,
        description="SASL mechanism, required with SASL_PLAINTEXT and SASL_SSL and invalid "
        "with the other protocols.",
    )
    sasl_username: str | None = Field(
        None, min_length=1, description="SASL user name, required with a SASL protocol."
    )
    sasl_password: SecretStr | None = Field(
        None,
        description="SASL password, required with a SASL protocol. Error messages and "
        "settings dumps show it masked.",
    )
    ssl_cafile: FilePath | None = Field(
        None,
        description="PEM file of the CA certificates that verify the brokers; unset uses "
        "the system's default CAs. Only with SSL and SASL_SSL.",
    )
    ssl_certfile: FilePath | None = Field(
        None,
        description="PEM file of the client certificate (and its key, unless ssl_keyfile "
        "is set) for brokers that require TLS client authentication.",
    )
    ssl_keyfile: FilePath | None = Field(
        None, description="PEM file of the client certificate's private key."
    )
    ssl_check_hostname: bool = Field(
        True,
        description="Check that each broker's certificate names the host it was reached at.",
    )

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        protocol = self.security_protocol
        uses_sasl = protocol in SASL_PROTOCOLS
        uses_ssl = protocol in SSL_PROTOCOLS
        if uses_sasl:
            missing = [
                key
                for key in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, key) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {protocol} needs {', '.join(missing)}; set them, or "
                    "use PLAINTEXT or SSL"
                )
        else:
            stray = [
                key
                for key in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, key) is not None
            ]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set, but security_protocol {protocol} does not use "
                    "SASL; use SASL_PLAINTEXT or SASL_SSL, or remove them"
                )
        if not uses_ssl:
            stray = [
                key
                for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
                if getattr(self, key) is not None
            ]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} set, but security_protocol {protocol} does not use "
                    "TLS; use SSL or SASL_SSL, or remove them"
                )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile is set without ssl_certfile; set both or neither")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class ContentDefenseSettings(_Section):
    quality_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="Quality scores below this are quarantined (LowQuality)."
    )
    confidence_threshold: float = Field(
        0.85,
        ge=0.0,
        le=1.0,
        description="Confidence at or above this needs at least one source.",
    )
    untrusted_confidence_threshold: float = Field(
        0.95,
        ge=0.0,
        le=1.0,
        description="Confidence at or above this from an untrusted agent is quarantined.",
    )
    duplicate_lookback_hours: float = Field(
        48.0,
        gt=0.0,
        le=720.0,
        description="Hours within which a repeated id or claim of one agent is a Duplicate.",
    )
    max_future_skew_seconds: float = Field(
        300.0,
        ge=0.0,
        le=86400.0,
        description="Seconds that created_at may lie after the broker timestamp before it "
        "lowers the quality score.",
    )
    max_age_hours: float = Field(
        168.0,
        gt=0.0,
        le=87600.0,
        description="Hours that created_at may lie before the broker timestamp before it "
        "lowers the quality score.",
    )
    trust_min_reviews: int = Field(
        5, ge=1, le=100000, description="Reviewed items an agent needs before it can be trusted."
    )
    trust_min_approval_ratio: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Share of approvals among reviewed items that makes an agent trusted.",
    )
    require_signatures: bool = Field(
        True, description="Dead-letter records whose Ed25519 signature does not verify."
    )


class CircuitBreakerSettings(_Section):
    failure_rate_threshold: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="Quarantined share of scored records in a window that opens the breaker.",
    )
    min_requests: int = Field(
        20,
        ge=1,
        le=1000000,
        description="Scored records a window needs before the failure rate is judged.",
    )
    timeout_seconds: float = Field(
        3600.0, gt=0.0, le=30 * 86400.0, description="Seconds an automatic trip stays OPEN."
    )
    max_timeout_seconds: float = Field(
        86400.0,
        gt=0.0,
        le=365 * 86400.0,
        description="Cap in seconds of the OPEN duration, which doubles after each failed "
        "HALF_OPEN.",
    )
    max_submissions_per_minute: float = Field(
        50.0,
        gt=0.0,
        le=1e9,
        description="Sliding-estimate submission rate per minute above which the breaker opens.",
    )
    half_open_probes: int = Field(
        5, ge=1, le=10000, description="Records scored in HALF_OPEN before the breaker decides."
    )
    half_open_max_seconds: float = Field(
        600.0,
        gt=0.0,
        le=30 * 86400.0,
        description="Seconds after which a HALF_OPEN breaker decides on the probes it has.",
    )
    window_seconds: float = Field(
        60.0, ge=1.0, le=86400.0, description="Size in seconds of the per-agent tumbling window."
    )
    window_retention_seconds: float = Field(
        60.0,
        ge=0.0,
        le=7 * 86400.0,
        description="Seconds a closed window is kept after it ends, before it is swept.",
    )

    @model_validator(mode="after")
    def _check_timeouts(self) -> CircuitBreakerSettings:
        if self.max_timeout_seconds < self.timeout_seconds:
            raise ValueError(
                f"max_timeout_seconds ({self.max_timeout_seconds}) must be at least "
                f"timeout_seconds ({self.timeout_seconds})"
            )
        return self


class AdminApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the admin API binds to.")
    port: int = Field(18180, ge=1, le=65535, description="TCP port of the admin API.")
    review_port: int = Field(18188, ge=1, le=65535, description="TCP port of the review page.")
    tokens_file: Path | None = Field(
        None,
        description="File of operator bearer tokens, one 'operator-name token' pair a line; "
        "'#' starts a comment.",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Serve without tokens; only accepted when host is a loopback address.",
    )
    command_timeout_seconds: float = Field(
        10.0,
        gt=0.0,
        le=300.0,
        description="Seconds a '?wait=true' write waits for the worker's result.",
    )
    max_request_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, description="Largest accepted request body."
    )
    page_limit_max: int = Field(
        1000, ge=1, le=100_000, description="Largest 'limit' a list request may ask for."
    )


class WorkerSettings(_Section):
    data_dir: Path = Field(
        Path(".cache/worker"), description="Folder of the worker's RocksDB table stores."
    )
    web_host: str = Field("127.0.0.1", description="Address of the worker's health/metrics port.")
    web_port: int = Field(
        18181, ge=1, le=65535, description="TCP port of the worker's /healthz, /readyz, /metrics."
    )
    sweep_interval_seconds: float = Field(
        15.0,
        ge=0.1,
        le=3600.0,
        description="Seconds between sweeps that expire windows of agents that went quiet.",
    )
    metrics_top_agents: int = Field(
        10,
        ge=1,
        le=1000,
        description="Agents named in the per-agent rate metrics, the highest rates first; "
        "the rest are summed under agent_id 'other'.",
    )
    lag_poll_interval_seconds: float = Field(
        10.0,
        ge=1.0,
        le=3600.0,
        description="Seconds between reads of the end and committed offsets behind the "
        "consumer lag metric.",
    )
    stall_timeout_seconds: float = Field(
        120.0,
        ge=10.0,
        le=86400.0,
        description="Seconds an assigned partition may have lag without its committed offset "
        "moving before the worker counts it as stalled.",
    )
    exit_on_stall: bool = Field(
        True,
        description="Stop the worker with an error when a partition stalls, so its "
        "supervisor restarts it; otherwise only /readyz reports the stall.",
    )
    rocksdb_write_buffer_mib: int = Field(
        4,
        ge=1,
        le=1024,
        description="Memtable size of each table store, in MiB. Each table keeps one store "
        "per assigned partition, and each store up to two memtables.",
    )
    rocksdb_block_cache_mib: int = Field(
        8,
        ge=1,
        le=16384,
        description="Read cache of each table store, in MiB.",
    )


SECTIONS: dict[str, type[_Section]] = {
    "kafka": KafkaSettings,
    "content_defense": ContentDefenseSettings,
    "circuit_breaker": CircuitBreakerSettings,
    "admin_api": AdminApiSettings,
    "worker": WorkerSettings,
}


def _flat_key_sections() -> dict[str, str]:
    owners: dict[str, str] = {}
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            if key in owners:
                raise RuntimeError(f"config key {key!r} is in both {owners[key]} and {section}")
            owners[key] = section
    return owners


FLAT_KEYS = _flat_key_sections()
# Keys whose values are never shown: in error messages, dumps and logs.
SECRET_KEYS = frozenset(
    key
    for model in SECTIONS.values()
    for key, field in model.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


def settings_environment(settings: GateSettings) -> dict[str, str]:
    """Return the ``STEMEDB_<SECTION>__<KEY>`` variables that reproduce ``settings``.

    Secrets appear in clear text, because the result is the environment of a child
    process. Never log or print it.
    """
    env: dict[str, str] = {}
    for section in SECTIONS:
        values = getattr(settings, section)
        for key, value in values.model_dump(mode="json").items():
            if value is None:  # unset optional keys stay unset
                continue
            secret = getattr(values, key)
            if isinstance(secret, SecretStr):
                text = secret.get_secret_value()
            elif isinstance(value, bool):
                text = str(value).lower()
            else:
                text = str(value)
            env[f"{ENV_PREFIX}{section.upper()}__{key.upper()}"] = text
    return env


class _EnvSource(PydanticBaseSettingsSource):
    """Reads ``STEMEDB_<KEY>`` and ``STEMEDB_<SECTION>__<KEY>`` into nested sections."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ builds the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
        out: dict[str, dict[str, str]] = {}
        for key, section in FLAT_KEYS.items():
            nested = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            flat = f"{ENV_PREFIX}{key.upper()}"
            if nested in env:
                out.setdefault(section, {})[key] = env[nested]
            elif flat in env:
                out.setdefault(section, {})[key] = env[flat]
        return out


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ builds the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            with self.path.open("rb") as f:
                return tomllib.load(f)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {str(self.path)!r} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(self.path)!r} is not valid TOML: {exc}") from exc


_config_path: Path | None = None


class GateSettings(BaseSettings):
    """All settings of the gate, grouped in the sections of the TOML file."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    content_defense: ContentDefenseSettings = ContentDefenseSettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    admin_api: AdminApiSettings = AdminApiSettings()
    worker: WorkerSettings = WorkerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Later sources lose: init kwargs, then environment, then the TOML file.
        return (init_settings, _EnvSource(settings_cls), _TomlSource(settings_cls, _config_path))


def resolve_config_path(explicit: str | Path | None) -> Path | None:
    """Return the TOML file to read: ``--config``, ``STEMEDB_CONFIG``, or the default if present."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_PATH_ENV)
    if from_env:
        return Path(from_env)
    if DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    return None


def load_settings(config: str | Path | None = None, **overrides: Any) -> GateSettings:
    """Load settings, raising :class:`ConfigError` with the key and value of any invalid entry."""
    global _config_path
    _config_path = resolve_config_path(config)
    try:
        return GateSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, _config_path)) from None
    finally:
        _config_path = None


def _describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key!r}; valid sections: {', '.join(SECTIONS)}")
            continue
        value = error.get("input")
        if isinstance(value, Mapping):
            # A check across the keys of a section, whose input is the whole section
            # (secrets included) and whose message names the keys.
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"invalid config [{key}]: {message}")
            continue
        if error["loc"][-1] in SECRET_KEYS and value is not None:
            value = MASKED
        env_hint = ""
        if len(error["loc"]) == 2 and isinstance(error["loc"][1], str):
            section, name = str(error["loc"][0]).upper(), str(error["loc"][1]).upper()
            env_hint = f" (environment: {ENV_PREFIX}{section}__{name} or {ENV_PREFIX}{name})"
        lines.append(f"invalid config {key} = {value!r}: {error['msg']}{env_hint}")
    where = f" in {str(path)!r} or the environment" if path else ""
    return f"invalid configuration{where}:\n  " + "\n  ".join(lines)


# Keys that operators may change at runtime with a set_thresholds command, by section.
RUNTIME_THRESHOLDS: dict[str, str] = {
    "quality_threshold": "content_defense",
    "confidence_threshold": "content_defense",
    "untrusted_confidence_threshold": "content_defense",
    "duplicate_lookback_hours": "content_defense",
    "max_future_skew_seconds": "content_defense",
    "max_age_hours": "content_defense",
    "trust_min_reviews": "content_defense",
    "trust_min_approval_ratio": "content_defense",
    "failure_rate_threshold": "circuit_breaker",
    "min_requests": "circuit_breaker",
    "timeout_seconds": "circuit_breaker",
    "max_timeout_seconds": "circuit_breaker",
    "max_submissions_per_minute": "circuit_breaker",
    "half_open_probes": "circuit_breaker",
    "half_open_max_seconds": "circuit_breaker",
}


def current_thresholds(settings: GateSettings) -> dict[str, float | int]:
    """Return the runtime-changeable thresholds of ``settings`` as one flat mapping."""
    return {
        key: getattr(getattr(settings, section), key) for key, section in RUNTIME_THRESHOLDS.items()
    }


def with_thresholds(settings: GateSettings, overrides: Mapping[str, Any]) -> GateSettings:
    """Return ``settings`` with threshold overrides applied.

    Raises :class:`ConfigError` naming the first unknown key or out-of-bounds value, so
    a command or a request can report which field is wrong.
    """
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section = RUNTIME_THRESHOLDS.get(key)
        if section is None:
            raise ConfigError(
                f"unknown threshold {key!r}; valid keys: {', '.join(sorted(RUNTIME_THRESHOLDS))}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"threshold {key} = {value!r} must be a number")
        by_section.setdefault(section, {})[key] = value
    updates: dict[str, Any] = {}
    for section, values in by_section.items():
        model = SECTIONS[section]
        try:
            updates[section] = model.model_validate(
                {**getattr(settings, section).model_dump(), **values}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            if not error["loc"]:  # a check across keys, whose message names them
                raise ConfigError(f"invalid thresholds: {error['msg']}") from None
            key = ".".join(str(part) for part in error["loc"])
            raise ConfigError(
                f"invalid threshold {key} = {error.get('input')!r}: {error['msg']}"
            ) from None
    return settings.model_copy(update=updates)

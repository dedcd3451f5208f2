"""Kafka security settings: checks at load, masked secrets, and the client arguments built."""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams import settings as settings_module
from streams.errors import ConfigError
from streams.kafka_security import aiokafka_security_options, faust_broker_credentials
from streams.settings import load_settings, settings_environment

PASSWORD = "correct-horse-battery-staple"
SCRAM = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "gate",
    "sasl_password": PASSWORD,
}


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the host's STEMEDB_ variables and any /etc/stemedb/config.toml from each test."""
    for name in list(os.environ):
        if name.upper().startswith("STEMEDB_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(settings_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    """Write a self-signed certificate and its key as PEM files; the cert is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "client.pem"
    key_path = tmp_path / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"ssl_cafile": cert_path, "ssl_certfile": cert_path, "ssl_keyfile": key_path}


def config_error(**kafka: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, kafka=kafka)
    return str(caught.value)


def test_security_defaults_plaintext() -> None:
    kafka = load_settings(None).kafka

    assert kafka.security_protocol == "PLAINTEXT"
    assert kafka.sasl_mechanism is None
    assert kafka.sasl_password is None
    assert kafka.ssl_check_hostname is True
    assert aiokafka_security_options(kafka) == {"security_protocol": "PLAINTEXT"}
    assert faust_broker_credentials(kafka) is None


@pytest.mark.parametrize(
    ("kafka", "expected"),
    [
        (
            {"security_protocol": "SASL_PLAINTEXT"},
            "security_protocol SASL_PLAINTEXT needs sasl_mechanism, sasl_username, sasl_password",
        ),
        (
            {**SCRAM, "sasl_password": None},
            "security_protocol SASL_PLAINTEXT needs sasl_password",
        ),
        (
            {**SCRAM, "security_protocol": "SASL_SSL", "sasl_username": None},
            "security_protocol SASL_SSL needs sasl_username",
        ),
        (
            {"sasl_mechanism": "SCRAM-SHA-256"},
            "sasl_mechanism set, but security_protocol PLAINTEXT does not use SASL",
        ),
        (
            {"security_protocol": "SSL", "sasl_username": "gate"},
            "sasl_username set, but security_protocol SSL does not use SASL",
        ),
    ],
)
def test_sasl_keys_mismatch_rejected(kafka: dict[str, Any], expected: str) -> None:
    message = config_error(**kafka)

    assert "invalid config [kafka]" in message
    assert expected in message


def test_ssl_file_with_plaintext_rejected(pem_files: dict[str, Path]) -> None:
    message = config_error(ssl_cafile=str(pem_files["ssl_cafile"]))

    assert "ssl_cafile set, but security_protocol PLAINTEXT does not use TLS" in message


def test_ssl_keyfile_without_certfile_rejected(pem_files: dict[str, Path]) -> None:
    message = config_error(security_protocol="SSL", ssl_keyfile=str(pem_files["ssl_keyfile"]))

    assert "ssl_keyfile is set without ssl_certfile" in message


@pytest.mark.parametrize("key", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_ssl_file_missing_rejected(key: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"

    message = config_error(security_protocol="SSL", **{key: str(missing)})

    assert f"invalid config kafka.{key} = {str(missing)!r}" in message
    assert "does not point to a file" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("security_protocol", "SASL"), ("sasl_mechanism", "GSSAPI")],
)
def test_security_value_unknown_rejected(key: str, value: str) -> None:
    message = config_error(**{**SCRAM, key: value})

    assert f"invalid config kafka.{key} = {value!r}" in message


def test_password_absent_from_errors() -> None:
    section_error = config_error(**{**SCRAM, "sasl_username": None})
    field_error = config_error(**SCRAM, sasl_password_typo="x")
    env_error = config_error(sasl_password=PASSWORD)

    assert PASSWORD not in section_error
    assert PASSWORD not in field_error
    assert PASSWORD not in env_error


def test_password_invalid_type_masked() -> None:
    message = config_error(**{**SCRAM, "sasl_password": 12345678})

    assert "invalid config kafka.sasl_password = '**********'" in message
    assert "12345678" not in message


def test_password_masked_in_dumps() -> None:
    settings = load_settings(None, kafka=SCRAM)

    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())
    assert PASSWORD not in settings.model_dump_json()


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SCRAM.items():
        monkeypatch.setenv(f"STEMEDB_KAFKA__{key.upper()}", value)

    kafka = load_settings(None).kafka

    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == PASSWORD


def test_settings_environment_reveals_password() -> None:
    """A child process gets the password itself, not the masked form."""
    env = settings_environment(load_settings(None, kafka=SCRAM))

    assert env["STEMEDB_KAFKA__SASL_PASSWORD"] == PASSWORD
    assert env["STEMEDB_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert "STEMEDB_KAFKA__SSL_CAFILE" not in env


def test_scram_aiokafka_options() -> None:
    options = aiokafka_security_options(load_settings(None, kafka=SCRAM).kafka)

    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "gate",
        "sasl_plain_password": PASSWORD,
    }


def test_scram_faust_credentials() -> None:
    credentials = faust_broker_credentials(load_settings(None, kafka=SCRAM).kafka)

    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "gate"
    assert credentials.password == PASSWORD
    assert PASSWORD not in repr(credentials)


def test_sasl_ssl_options(pem_files: dict[str, Path]) -> None:
    kafka = load_settings(
        None,
        kafka={
            **SCRAM,
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(pem_files["ssl_cafile"]),
        },
    ).kafka

    options = aiokafka_security_options(kafka)
    credentials = faust_broker_credentials(kafka)

    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname is True
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_ssl_client_cert_options(pem_files: dict[str, Path]) -> None:
    kafka = load_settings(
        None,
        kafka={
            "security_protocol": "SSL",
            "ssl_check_hostname": False,
            **{key: str(path) for key, path in pem_files.items()},
        },
    ).kafka

    options = aiokafka_security_options(kafka)
    credentials = faust_broker_credentials(kafka)

    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"

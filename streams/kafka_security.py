"""Security options (TLS, SASL) of every Kafka client the gate builds, from one place.

The worker's faust app takes them as ``broker_credentials``. The gate's own aiokafka
clients (topic setup, lag reader, admin API, CLI tools) take them as keyword
arguments. Both come from the ``[kafka]`` settings, which check at load that the
keys fit together.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from streams.errors import ConfigError
from streams.settings import SASL_PROTOCOLS, SSL_PROTOCOLS, KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Build the TLS context of ``kafka``: its CA file (or the system's CAs) and client cert.

    The context verifies broker certificates (``ssl.create_default_context`` loads the
    system's CAs when no CA file is given), and their host names unless
    ``ssl_check_hostname`` is false.
    """
    context: ssl.SSLContext = create_ssl_context(
        cafile=kafka.ssl_cafile,
        certfile=kafka.ssl_certfile,
        keyfile=kafka.ssl_keyfile,
    )
    context.check_hostname = kafka.ssl_check_hostname
    return context


def aiokafka_security_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return the security keyword arguments of an aiokafka producer, consumer or admin client.

    With the default PLAINTEXT protocol this is ``{"security_protocol": "PLAINTEXT"}``,
    which is aiokafka's own default.
    """
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol in SSL_PROTOCOLS:
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol in SASL_PROTOCOLS:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = _sasl_password(kafka)
    return options


def faust_broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Return the ``broker_credentials`` of the faust app, or None for PLAINTEXT.

    faust-streaming 0.15.3 turns them into the same aiokafka arguments as
    :func:`aiokafka_security_options`. ``SASLCredentials`` selects SASL_SSL when it
    gets a TLS context and SASL_PLAINTEXT when it does not.
    """
    protocol = kafka.security_protocol
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(kafka))
    if protocol in SASL_PROTOCOLS:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=_sasl_password(kafka),
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context(kafka) if protocol == "SASL_SSL" else None,
        )
    return None


def _sasl_password(kafka: KafkaSettings) -> str:
    # KafkaSettings rejects a SASL protocol without a password at load. This check
    # covers settings built with model_construct, which skips validation.
    if kafka.sasl_password is None:
        raise ConfigError(f"kafka.sasl_password is missing for {kafka.security_protocol}")
    return kafka.sasl_password.get_secret_value()

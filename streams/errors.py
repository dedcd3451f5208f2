"""Exceptions of the gate. Every error the gate raises derives from :class:`GateError`."""


class GateError(Exception):
    """Root of the gate's exceptions."""


class ConfigError(GateError, ValueError):
    """Invalid configuration; the message names the key and the value."""


class BrokerError(GateError, RuntimeError):
    """The local Kafka broker could not be installed, started or stopped."""


class TopicSetupError(GateError, RuntimeError):
    """A topic exists with settings that differ from the ones the gate needs."""

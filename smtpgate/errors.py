"""The error types each layer raises; the CLI turns any of them into exit 2."""

from __future__ import annotations


class SmtpgateError(Exception):
    """Base of every error smtpgate reports to the user (one line, no traceback)."""


class TargetError(SmtpgateError):
    """The target could not be started, reached or stopped."""


class CollectError(SmtpgateError):
    """Observations could not be collected from a running target."""


class PolicyError(SmtpgateError):
    """The policy file is missing, unreadable or invalid (message names file:line)."""


class WorkloadError(SmtpgateError):
    """Run options, a Compose file or a Kubernetes manifest are invalid (names file:line or the node's path)."""


class ReportError(SmtpgateError):
    """A report could not be written."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM arrived (CI cancellation). A KeyboardInterrupt, like Ctrl-C, so
    no ``except Exception`` on the way can swallow it: it unwinds every scan
    (each target stops on the way out) up to the CLI, which reports it."""


class EngineError(TargetError):
    """The container engine refused a request (smtpgate.engines); ``status`` is
    the engine's HTTP status code when it answered, else None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineGone(EngineError):
    """The engine stopped answering: its socket vanished, the daemon stopped,
    the connection was refused or timed out. Objects it holds may be left."""


class ObjectNotFound(EngineError):
    """The engine answered 404: no such image, container or network."""


class Conflict(EngineError):
    """The engine answered 409: e.g. a removal already in progress, a name in use."""

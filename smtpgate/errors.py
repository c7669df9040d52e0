"""The error types each layer raises; the CLI turns any of them into exit 2."""


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

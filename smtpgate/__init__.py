"""smtpgate: fail a build when an image runs an SMTP service nobody approved."""

__version__ = "0.1.0"

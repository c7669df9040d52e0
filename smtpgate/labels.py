"""The labels on everything smtpgate creates on an engine."""

from __future__ import annotations

import os
import socket

LABEL = "smtpgate"


def owner_labels() -> dict[str, str]:
    """Who created an object: lets ``smtpgate cleanup`` spare running scans."""
    return {f"{LABEL}.owner-pid": str(os.getpid()), f"{LABEL}.owner-host": socket.gethostname()}

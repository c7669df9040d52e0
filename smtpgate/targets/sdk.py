"""What the docker SDK raises, for the few places that must catch it (one
place to re-point when the SDK moves behind an engine adapter).

Beside its own `DockerException`s the SDK lets `requests` errors through when
the engine's socket itself fails (engine stopped, socket removed), and a
streamed body (`export`, `logs`) can end in a raw `urllib3` error mid-iteration.
"""

from __future__ import annotations


def engine_errors() -> tuple[type[Exception], ...]:
    """The exception types an engine call can end with (imported lazily: the SDK is slow to import)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException
    from urllib3.exceptions import HTTPError

    return (DockerException, RequestException, HTTPError, OSError)

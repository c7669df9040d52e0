"""The container engine seam: every call smtpgate makes to Docker or Podman.

``connect()`` gives an `Engine` for the engine DOCKER_HOST names (the client
negotiates the API version: none is pinned). A new engine is one `Engine`
implementation; nothing outside this package imports an engine SDK. Errors are
`smtpgate.errors` types chosen by status code (see `smtpgate.engines.base`).
"""

from __future__ import annotations

from smtpgate.engines.base import ContainerSpec, Engine, Image, Listed, overlay_dirs, readable_dirs
from smtpgate.engines.docker import as_engine, connect

__all__ = ["ContainerSpec", "Engine", "Image", "Listed", "as_engine", "connect", "overlay_dirs", "readable_dirs"]

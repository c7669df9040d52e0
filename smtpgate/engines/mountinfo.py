"""A running container's image layers from its mount table, for engines whose
image inspect does not name them (the containerd image store reports
``GraphDriver {"Name": "overlayfs", "Data": null}``).

The root entry of /proc/<pid>/mountinfo of the container's PID 1 is an
overlay mount whose ``lowerdir=`` lists the image's layer directories (the
engine's init layer first on Docker's overlay2), top first. The kernel escapes
space, tab, newline, backslash, comma and '=' in option values as octal
(``\\054``); overlayfs separates layers with ':' and escapes a ':' inside a
path as ``\\:``; "::" introduces data-only layers (no names of their own),
which are left out. Relative paths (an engine that mounted from inside its
snapshot directory to shorten the options) mean nothing here: then None.
"""

from __future__ import annotations

import re

from smtpgate.engines.base import readable_dirs

_OCTAL = re.compile(r"\\([0-7]{3})")
MAX_BYTES = 1 << 20


def root_lowerdirs(path: str) -> list[str] | None:
    """The lower layer directories of the root overlay mount in mountinfo ``path``,
    top first, when all are absolute and readable here; None otherwise."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_BYTES).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    layers = parse_root_lowerdirs(text)
    return layers if layers is not None and readable_dirs(layers) else None


def parse_root_lowerdirs(text: str) -> list[str] | None:
    """The last mount on "/" is the one in use (a later mount hides earlier ones)."""
    root: list[str] | None = None
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 10 and fields[4] == "/" and "-" in fields[6:]:
            root = fields
    if root is None:
        return None
    sep = root.index("-", 6)
    if len(root) < sep + 4 or root[sep + 1] != "overlay":
        return None  # the root is not an overlay mount
    return _lowerdirs(root[sep + 3])


def _lowerdirs(options: str) -> list[str] | None:
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key != "lowerdir":
            continue
        value = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), value)
        main = value.split("::", 1)[0]  # after "::": data-only layers
        parts = [p.replace("\\:", ":") for p in re.split(r"(?<!\\):", main) if p]
        return parts if parts and all(p.startswith("/") for p in parts) else None
    return None

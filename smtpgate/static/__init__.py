"""Static analysis: read a root filesystem (and image metadata) without running it.

Public API (other targets, e.g. VM disks read offline, code against this)::

    from smtpgate.static import (RootFS, DirFS, TarFS, FsLimits, ImageConfig, StaticFacts,
                                 analyse, image_filesystem, image_config, merge, static_findings)

    with DirFS("/mnt/vmroot") as fs:                       # a plain directory tree
        facts = analyse(fs, boots_init=True)               # a VM boots its init
    with TarFS.open("rootfs.tar") as fs: ...               # a tarball (or any stream: TarFS.from_stream)
    with image_filesystem(client, image_id) as fs:         # an engine image, never started
        facts = analyse(fs, image_config=image_config(client.images.get(image_id)))

    findings = merge(runtime_findings, facts)              # one Finding per service
    findings = static_findings(facts)                      # --static: no runtime findings

- `RootFS`: read-only view of one root filesystem. Paths are absolute inside
  the root; symlinks are resolved component by component *inside* the root
  (an absolute target is re-rooted, `..` stops at the root, at most 40 hops),
  so nothing outside the root is ever read. Reads are bounded (`FsLimits`:
  bytes per file, total bytes kept, entries indexed); an over-limit file is
  reported, never read whole. Methods: `read(path) -> bytes | None`,
  `text(path)`, `exists`, `isdir`, `listdir`, `readlink`, `glob`, `problems`.
- `analyse(fs, *, image_config=None, boots_init=None) -> StaticFacts`: installed
  packages and binaries, what is enabled (image command, systemd, SysV rc,
  OpenRC, supervisord, s6, runit, inetd/xinetd) and where each MTA is configured
  to listen, each with file:line evidence. `boots_init=None` decides from the
  image command (PID 1 an init system); True for VM images.
- `merge(findings, facts) -> list[Finding]`: runtime findings gain the static
  evidence of their software; enabled-but-not-listening services become
  ENABLED findings, installed-only ones INSTALLED findings; disagreements
  between configuration and runtime are noted as evidence.

Nothing here raises on malformed input: a file that cannot be parsed becomes a
problem text in `StaticFacts.problems`. Errors of the filesystem backends
(engine unreachable, unreadable tarball) are `StaticError`.
"""

from smtpgate.static.analyse import analyse
from smtpgate.static.facts import (
    Binary,
    ConfiguredListen,
    Enablement,
    Package,
    SoftwareFacts,
    StaticFacts,
)
from smtpgate.static.fs import DirFS, FsLimits, RootFS, StaticError
from smtpgate.static.image import ImageConfig, image_config, image_filesystem
from smtpgate.static.merge import merge, static_findings
from smtpgate.static.tarfs import TarFS

__all__ = [
    "Binary", "ConfiguredListen", "DirFS", "Enablement", "FsLimits", "ImageConfig", "Package", "RootFS",
    "SoftwareFacts", "StaticError", "StaticFacts", "TarFS", "analyse", "image_config", "image_filesystem",
    "merge", "static_findings",
]

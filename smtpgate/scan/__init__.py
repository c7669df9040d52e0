"""One scan pipeline: evidence sources feed one `judge`.

A mode (a container run, `--static`, a booted or offline VM disk, a live host)
is a choice of sources; whatever they gathered goes into an `Evidence`, and
`judge` alone turns it into a `ScanResult`: static facts merged, incomplete
evidence made an error, every finding evaluated against the policy.

Beside it: `settle` (when a started target has finished starting up),
`options` (ScanOptions, the knobs of one scan, and its deadline), `runner`
(many targets at once: --jobs, --shard). The pipeline that runs a target
(start, settle, collect, probe, judge, stop) is smtpgate.gate. Neither is
imported here: `runner` calls smtpgate.gate, which imports this package (a
cycle), and `smtpgate.scan.settle` must stay the module, not its function.
"""

from smtpgate.scan.judge import Evidence, judge

__all__ = ["Evidence", "judge"]

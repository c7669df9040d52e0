"""One scan pipeline: evidence sources feed one `judge`.

A mode (a container run, `--static`, a booted or offline VM disk, a live host)
is a choice of sources; whatever they gathered goes into an `Evidence`, and
`judge` alone turns it into a `ScanResult`: static facts merged, incomplete
evidence made an error, every finding evaluated against the policy.
"""

from smtpgate.scan.judge import Evidence, judge

__all__ = ["Evidence", "judge"]

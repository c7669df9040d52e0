"""What the deployment adds to an image: run options, Compose services,
Kubernetes containers, each read into a `RunSpec` (smtpgate.workload.spec)."""

from smtpgate.workload.spec import DeclaredPort, Healthcheck, Mount, RunSpec, scrub

__all__ = ["DeclaredPort", "Healthcheck", "Mount", "RunSpec", "scrub"]

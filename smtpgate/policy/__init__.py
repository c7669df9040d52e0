"""The policy: which SMTP findings are approved, and what happens to the rest.

    policy = load_policy("smtpgate.yml")      # or default_policy()
    judged = evaluate(policy, finding, boots_init=target.boots_init)

`schema` reads and validates the YAML file (every problem is a PolicyError
naming file:line), `rules` holds the frozen data, `evaluate` decides.
The file format is documented in docs/policy.md.
"""

from __future__ import annotations

from smtpgate.policy.evaluate import evaluate
from smtpgate.policy.rules import Approval, Bind, Defaults, Policy
from smtpgate.policy.schema import SUPPORTED_VERSIONS, load_policy, policy_from_text

__all__ = [
    "SUPPORTED_VERSIONS",
    "Approval",
    "Bind",
    "Defaults",
    "Policy",
    "default_policy",
    "evaluate",
    "load_policy",
    "policy_from_text",
]


def default_policy() -> Policy:
    """The policy used without a file: loopback passes, other listeners fail,
    enabled-not-running fails where an init system boots (else warns),
    installed-only warns, no approvals."""
    return Policy()

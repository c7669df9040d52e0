"""pytest plugin (entry point ``pytest11``): the ``smtpgate`` fixture checks a
testinfra ``host`` (any backend) and turns each unapproved SMTP service into a
test failure with smtpgate's own message::

    def test_no_unapproved_smtp(host, smtpgate):
        smtpgate.check(host, policy="smtpgate.yml")

    $ pytest --hosts=docker://my-container

Inspection goes through the host's shell (see smtpgate.targets.testinfra for
what needs python3 in the target). A target that could not be inspected fails
the test too: could not inspect is never a pass. Nothing is imported until the
fixture is used, so the plugin costs other test suites nothing.
"""

from __future__ import annotations

from typing import Any

import pytest


class SmtpgateCheck:
    """What the ``smtpgate`` fixture gives a test."""

    def scan(self, host: Any, policy: str | None = None, **options: Any) -> Any:
        """The ScanResult of the testinfra host, without judging the test."""
        from smtpgate import gate
        from smtpgate.policy import default_policy, load_policy
        from smtpgate.targets.testinfra import TestinfraTarget

        rules = load_policy(policy) if policy else default_policy()
        return gate.scan(TestinfraTarget(host), rules, gate.ScanOptions(**options))

    def check(self, host: Any, policy: str | None = None, **options: Any) -> Any:
        """Scan the host; fail the test with smtpgate's report when any SMTP service is
        unapproved or anything could not be inspected. Returns the ScanResult."""
        from smtpgate.report import ReportMeta, get_report

        result = self.scan(host, policy, **options)
        if result.violations or result.errors:
            meta = ReportMeta(policy_source=policy or "default policy")
            pytest.fail(get_report("text").render([result], meta), pytrace=False)
        return result


@pytest.fixture
def smtpgate() -> SmtpgateCheck:
    """Check a testinfra host for unapproved SMTP services: ``smtpgate.check(host)``."""
    return SmtpgateCheck()

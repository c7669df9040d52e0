"""Static facts merged with runtime findings, and how the default policy judges the result."""

from __future__ import annotations

from smtpgate.findings import listening_findings
from smtpgate.model import BindScope, Listener, Outcome, Process, Protocol, SmtpProbe, State
from smtpgate.policy import default_policy, evaluate
from smtpgate.static import ConfiguredListen, Enablement, Package, StaticFacts, merge, static_findings

PKG = Package("postfix", "postfix", "3.7.11-0+deb12u1", "dpkg", "/var/lib/dpkg/status", 2170)
MASTER = Process(10, "master", ("/usr/lib/postfix/sbin/master", "-w"))


def _runtime(address: str):
    li = Listener(address, 25, 4, process=MASTER)
    probe = SmtpProbe(address, 25, Protocol.SMTP, greeting="220 mx ESMTP Postfix (Debian/GNU)", ehlo=("250 mx",))
    return listening_findings([li], [probe])


def _facts(scope: BindScope, by_command: bool = False) -> StaticFacts:
    return StaticFacts(
        packages=(PKG,),
        enabled=(Enablement("postfix", "command" if by_command else "systemd", "starts it", None, None, by_command),),
        listens=(ConfiguredListen("postfix", scope, "x", "smtp", "inet_interfaces = x", "/etc/postfix/main.cf", 46),),
    )


def test_listening_finding_gains_static_evidence_with_file_and_line():
    (finding,) = merge(_runtime("0.0.0.0"), _facts(BindScope.ALL))
    kinds = [e.kind for e in finding.evidence]
    assert kinds[:2] == ["listening", "greeting"] and {"unit", "config", "package"} <= set(kinds)
    config = next(e for e in finding.evidence if e.kind == "config")
    assert (config.path, config.line) == ("/etc/postfix/main.cf", 46)
    assert finding.software.version == "3.7.11-0+deb12u1" and finding.state is State.LISTENING


def test_disagreement_is_noted_both_ways():
    (restart_missed,) = merge(_runtime("0.0.0.0"), _facts(BindScope.LOOPBACK))
    note = next(e for e in restart_missed.evidence if e.kind == "note")
    assert "loopback only" in note.text and "restart" in note.text and note.line == 46
    (wider_later,) = merge(_runtime("127.0.0.1"), _facts(BindScope.ALL))
    assert "after a restart" in next(e for e in wider_later.evidence if e.kind == "note").text


def test_enabled_but_not_listening_and_installed_only():
    (enabled,) = merge([], _facts(BindScope.ALL))
    assert enabled.state is State.ENABLED and enabled.configured_scope is BindScope.ALL
    (installed,) = static_findings(StaticFacts(packages=(PKG,)))
    assert installed.state is State.INSTALLED and installed.software.how == "package"
    assert merge([], StaticFacts(listens=_facts(BindScope.ALL).listens)) == []  # config alone: no finding


def _outcome(finding, boots_init: bool) -> Outcome:
    return evaluate(default_policy(), finding, boots_init=boots_init).decision.outcome


def test_default_policy_on_static_findings():
    (unit,) = static_findings(_facts(BindScope.ALL))
    assert _outcome(unit, False) is Outcome.WARN and _outcome(unit, True) is Outcome.FAIL
    (by_command,) = static_findings(_facts(BindScope.ALL, by_command=True))
    assert _outcome(by_command, False) is Outcome.FAIL
    (loopback,) = static_findings(_facts(BindScope.LOOPBACK, by_command=True))
    assert _outcome(loopback, False) is Outcome.PASS and _outcome(loopback, True) is Outcome.PASS
    (installed,) = static_findings(StaticFacts(packages=(PKG,)))
    assert _outcome(installed, True) is Outcome.WARN


def test_merge_without_facts_is_identity():
    runtime = _runtime("0.0.0.0")
    assert merge(runtime, None) == runtime

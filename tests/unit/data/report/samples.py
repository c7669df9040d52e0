"""Scan results built directly from the model, for the report tests.

Loaded by path (tests/unit is not a package), see `load()` in each test file.
"""

from __future__ import annotations

from datetime import datetime, timezone

from smtpgate.model import (
    Decision,
    Evidence,
    Finding,
    Judged,
    Listener,
    Outcome,
    Process,
    Protocol,
    ScanResult,
    SmtpProbe,
    Software,
    State,
    TargetInfo,
)
from smtpgate.report import ReportMeta

META = ReportMeta(tool_version="0.1.0", started_at=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
                  command_line=("smtpgate", "registry.example.com/mail/relay:1.4"),
                  policy_source="default policy")

MASTER = Process(812, "master", ("/usr/lib/postfix/sbin/master", "-w"), "/usr/lib/postfix/sbin/master", 0)
POSTFIX = Software("postfix", "Postfix", None, "greeting")
GREETING = "220 relay.example ESMTP Postfix (Debian/GNU)"
EHLO = ("250-relay.example", "250-PIPELINING", "250-SIZE 10240000", "250-STARTTLS", "250 8BITMIME")
UNAPPROVED = "SMTP service listening on all interfaces; only loopback-only SMTP is approved"


def _smtp(li: Listener, greeting: str = GREETING, tls: bool = False) -> SmtpProbe:
    return SmtpProbe(li.address, li.port, Protocol.SMTP, tls, greeting, EHLO,
                     "220 then 250 to EHLO", "127.0.0.1", 0.02)


def postfix_fail() -> ScanResult:
    """Postfix on 0.0.0.0:25, [::]:25 and 0.0.0.0:587, plus an HTTP port: FAIL."""
    l25, l25v6, l587 = (Listener("0.0.0.0", 25, 4, 101, MASTER), Listener("::", 25, 6, 102, MASTER),
                        Listener("0.0.0.0", 587, 4, 103, MASTER))
    web = Listener("127.0.0.1", 8080, 4, 104, Process(20, "python3", ("python3", "-m", "http.server")))
    finding = Finding(POSTFIX, State.LISTENING, (l25, l25v6, l587),
                      (_smtp(l25), _smtp(l25v6), _smtp(l587)),
                      (Evidence("listening", "0.0.0.0:25 held by master[812]"),
                       Evidence("greeting", GREETING),
                       Evidence("config", "inet_interfaces = all", "/etc/postfix/main.cf", 42)))
    fail = Decision(Outcome.FAIL, UNAPPROVED)
    judged = Judged(finding, fail, tuple((li, fail) for li in finding.listeners))
    http = SmtpProbe("127.0.0.1", 8080, Protocol.OTHER, greeting="",
                     detail="answered HTTP/1.0 400 Bad Request to EHLO")
    return ScanResult(
        TargetInfo("image", "registry.example.com/mail/relay:1.4", "sha256:" + "3f4a9c0b1d2e" * 5 + "abcd",
                   ("registry.example.com/mail/relay@sha256:" + "ab" * 32,
                    "mirror.example.com/relay@sha256:" + "cd" * 32)),
        listeners=(l25, l25v6, l587, web), probes=(*finding.probes, http), judged=(judged,),
        notes=("probed from inside the container's network namespace",),
        method="host-netns", timings={"total": 7.25, "probe": 6.1})


def loopback_pass() -> ScanResult:
    """Exim on loopback only (approved by a rule) and Sendmail installed only (WARN): PASS."""
    exim_proc = Process(55, "exim4", ("/usr/sbin/exim4", "-bd", "-q30m"))
    l4, l6 = Listener("127.0.0.1", 25, 4, 1, exim_proc), Listener("::1", 25, 6, 2, exim_proc)
    exim = Finding(Software("exim", "Exim", "4.96", "greeting"), State.LISTENING, (l4, l6),
                   (_smtp(l4, "220 box ESMTP Exim 4.96"), _smtp(l6, "220 box ESMTP Exim 4.96")),
                   (Evidence("listening", "127.0.0.1:25 held by exim4[55]"),))
    ok = Decision(Outcome.PASS, "bound to loopback only (CIS local-only mode)", "policy.yml:4",
                  "mail-team@example.com")
    sendmail = Finding(Software("sendmail", "Sendmail", "8.17.1", "package"), State.INSTALLED,
                       evidence=(Evidence("package", "sendmail-bin 8.17.1.9-2"),))
    warn = Decision(Outcome.WARN, "installed but neither running nor enabled")
    return ScanResult(TargetInfo("image", "example/app:2", "sha256:" + "11" * 32),
                      listeners=(l4, l6), probes=exim.probes,
                      judged=(Judged(exim, ok, ((l4, ok), (l6, ok))), Judged(sendmail, warn)),
                      method="host-netns", timings={"total": 1.5})


def clean() -> ScanResult:
    """One non-SMTP listener (nginx on :80): PASS with nothing judged."""
    nginx = Listener("0.0.0.0", 80, 4, 7, Process(1, "nginx", ("nginx: master process",)))
    probe = SmtpProbe("0.0.0.0", 80, Protocol.OTHER, detail="no greeting; answered HTTP/1.1 400")
    return ScanResult(TargetInfo("image", "nginx:1.25", "sha256:" + "22" * 32),
                      listeners=(nginx,), probes=(probe,), method="host-netns",
                      timings={"total": 0.9})


INSPECTION_ERRORS = ("could not enter the network namespace of pid 4242: Operation not permitted",
                     "port 2525: no greeting within 10 s\nthe port accepted and stayed silent")


def error_result() -> ScanResult:
    """Nothing could be inspected: ERROR (never a pass)."""
    return ScanResult(TargetInfo("image", "example/broken:latest", "sha256:" + "33" * 32),
                      errors=INSPECTION_ERRORS, method="helper", timings={})


BAD = "\x00\x07\x1b[2J\x1b]0;pwned\x07\x9b31m\r\x7f\udcff\ud800\ufffe\uffff\U0010ffff\u202e]]></failure><!--"
HUGE = "A" * 1_000_000


def hostile() -> ScanResult:
    """A banner and every other field full of terminal and XML attacks: FAIL."""
    proc = Process(9, BAD, (BAD, HUGE), BAD)
    li = Listener("0.0.0.0", 2525, 4, 9, proc)
    probe = SmtpProbe("0.0.0.0", 2525, Protocol.SMTP, False, "220 " + BAD + HUGE, (BAD, HUGE),
                      BAD, BAD)
    finding = Finding(Software("unknown", BAD, BAD, BAD), State.LISTENING, (li,), (probe,),
                      (Evidence(BAD, HUGE, BAD, 1), Evidence("greeting", BAD)))
    fail = Decision(Outcome.FAIL, BAD + HUGE, BAD, BAD)
    return ScanResult(TargetInfo("image", "evil/" + BAD, BAD, (BAD,)), listeners=(li,),
                      probes=(probe,), judged=(Judged(finding, fail, ((li, fail),)),),
                      errors=(BAD + HUGE,), notes=(BAD,), method=BAD,
                      timings={"total": float("nan"), BAD: 1.0})


def all_results() -> tuple[ScanResult, ...]:
    return (postfix_fail(), loopback_pass(), clean(), error_result(), hostile())

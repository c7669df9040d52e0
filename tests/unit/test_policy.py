"""The policy: loading and validating YAML files, and judging findings.

Validation runs on a corpus like yamllint's: each file in data/policy/bad/
starts with `# expect: {file}:LINE: message` and must fail with exactly that
message; each file in data/policy/good/ must load.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpgate.errors import PolicyError
from smtpgate.model import (
    BindScope,
    Finding,
    Judged,
    Listener,
    Outcome,
    Protocol,
    Software,
    State,
)
from smtpgate.policy import (
    Approval,
    Defaults,
    Policy,
    default_policy,
    evaluate,
    load_policy,
    policy_from_text,
)

DATA = Path(__file__).parent / "data" / "policy"
DOCS = Path(__file__).parents[2] / "docs" / "policy.md"
BAD = sorted((DATA / "bad").glob("*.yml"))
GOOD = sorted((DATA / "good").glob("*.yml"))
DAY = datetime.date(2026, 6, 1)

POSTFIX = Software("postfix", "Postfix", "3.7.11", "greeting")
EXIM = Software("exim", "Exim")
DOVECOT = Software("dovecot", "Dovecot")


def expected_message(path: Path) -> str:
    """The `# expect:` line of a bad corpus file, with {file} filled in."""
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' line"
    return first[len("# expect: ") :].replace("{file}", str(path))


def policy(text: str) -> Policy:
    return policy_from_text(text, "smtpgate.yml")


def listening(
    *endpoints: str, software: Software = POSTFIX, protocol: Protocol = Protocol.SMTP
) -> Finding:
    """A LISTENING finding from `address:port` strings (IPv6 as `[addr]:port`)."""
    listeners = []
    for end in endpoints:
        address, port = end.rsplit(":", 1)
        address = address.strip("[]")
        family = 6 if ":" in address else 4
        listeners.append(Listener(address, int(port), family))
    return Finding(software, State.LISTENING, tuple(listeners), protocol=protocol)


def judge(
    pol: Policy, finding: Finding, *, boots_init: bool = False, today: datetime.date = DAY
) -> Judged:
    return evaluate(pol, finding, boots_init=boots_init, today=today)


def outcomes(judged: Judged) -> list[Outcome]:
    return [d.outcome for _, d in judged.per_listener]


# -- the corpus ----------------------------------------------------------------


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_file_fails_with_its_expected_message(path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == expected_message(path)


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_file_loads(path: Path) -> None:
    loaded = load_policy(path)
    assert loaded.source == str(path)
    assert all(a.source.startswith(f"{path}:") for a in loaded.approvals)


def test_the_corpus_is_not_empty() -> None:
    assert len(BAD) >= 30 and len(GOOD) >= 5


def test_docs_examples_load() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 4
    for block in blocks:
        assert isinstance(policy_from_text(block, "docs/policy.md"), Policy)


def test_docs_show_only_messages_the_corpus_produces() -> None:
    section = DOCS.read_text().split("## Error messages", 1)[1].split("```")[1]
    shown = [line for line in section.splitlines() if re.match(r"smtpgate\.yml:\d", line)]
    produced = {expected_message(p).replace(str(p), "smtpgate.yml") for p in BAD}
    assert len(shown) >= 25
    assert [line for line in shown if line not in produced] == []


# -- reading files ---------------------------------------------------------------


def test_missing_file_names_path_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "smtpgate.yml"
    with pytest.raises(
        PolicyError,
        match=r"smtpgate\.yml: cannot read policy file: "
        r"No such file or directory$",
    ):
        load_policy(path)


def test_directory_is_not_a_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r": cannot read policy file: Is a directory$"):
        load_policy(tmp_path)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    path.write_bytes(b"version: 1\n" + b"# padding\n" * 120_000)
    with pytest.raises(PolicyError, match=r"huge\.yml: policy file is larger than 1024 KiB$"):
        load_policy(path)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\n")
    assert load_policy(str(path)).approvals == ()


def test_load_accepts_str_and_pathlike() -> None:
    path = DATA / "good" / "minimal.yml"
    assert load_policy(path) == load_policy(str(path))


# -- what a valid file becomes ---------------------------------------------------


def test_full_file_becomes_frozen_data() -> None:
    loaded = load_policy(DATA / "good" / "full.yml")
    assert loaded.defaults == Defaults(
        loopback=Outcome.WARN,
        listening=Outcome.FAIL,
        enabled=None,
        installed=Outcome.PASS,
        lmtp=None,
    )
    lmtp, smarthost, exim = loaded.approvals
    assert lmtp == Approval(
        reason="LMTP delivery from Postfix",
        source=f"{DATA / 'good' / 'full.yml'}:13",
        software=("dovecot",),
        ports=(24,),
        bind=(BindScope.LOOPBACK,),
        owner="mail-platform@example.com",
    )
    assert smarthost.software == ()  # "*" means any
    assert smarthost.bind == (
        ipaddress.ip_address("10.20.0.5"),
        ipaddress.ip_address("2001:db8::25"),
        ipaddress.ip_address("192.0.2.7"),
    )
    assert smarthost.state == (State.LISTENING, State.ENABLED)
    assert smarthost.reason == "internal smarthost, reachable only on the service network"
    assert smarthost.expires == datetime.date(2026, 12, 31)
    assert exim.software == ("exim", "exim4") and exim.state == (State.INSTALLED,)
    with pytest.raises(AttributeError):
        loaded.approvals = ()  # type: ignore[misc]


def test_values_are_normalised() -> None:
    (approval,) = policy("""
version: 1
approvals:
  - software: [Postfix, postfix]
    ports: [587, 25, 587]
    bind: ["[::1]", "::FFFF:10.0.0.5", 1:2:3:4:5:6:7:8]
    reason: "  relay  "
""").approvals
    assert approval.software == ("postfix",)
    assert approval.ports == (587, 25)
    assert approval.bind == (
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("1:2:3:4:5:6:7:8"),
    )
    assert approval.reason == "relay"
    assert approval.source == "smtpgate.yml:4"  # the text starts with an empty line


def test_null_sections_mean_nothing() -> None:
    assert load_policy(DATA / "good" / "null-sections.yml").approvals == ()


def test_anchors_are_followed() -> None:
    first, second = load_policy(DATA / "good" / "anchors.yml").approvals
    assert second.ports == first.ports == (465, 587)
    assert second.reason == first.reason and second.owner == first.owner


def test_default_policy_has_the_documented_defaults() -> None:
    assert default_policy() == Policy(
        source=None,
        defaults=Defaults(
            loopback=Outcome.PASS,
            listening=Outcome.FAIL,
            enabled=None,
            installed=Outcome.WARN,
            lmtp=None,
        ),
        approvals=(),
    )
    assert default_policy().name == "the default policy"


def test_known_software_refuses_unknown_ids() -> None:
    text = "version: 1\napprovals:\n  - software: postifx\n    reason: relay\n"
    with pytest.raises(PolicyError) as err:
        policy_from_text(text, "p.yml", known_software={"postfix", "exim"})
    assert str(err.value) == (
        "p.yml:3: approvals[0].software: unknown software 'postifx' (did you mean 'postfix'?); "
        'known: exim, postfix, or "*" for any'
    )
    assert policy_from_text(
        text.replace("postifx", "Postfix"), "p.yml", known_software={"postfix"}
    ).approvals[0].software == ("postfix",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\napprovals:\n  - reason: x\n    ports: 0x19\n",
            "smtpgate.yml:4: approvals[0].ports: write '0x19' as a plain decimal number",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    ports: 1:30\n",
            "smtpgate.yml:4: approvals[0].ports: write '1:30' as a plain decimal number",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    ports: true\n",
            "smtpgate.yml:4: approvals[0].ports: expected a port number (1..65535), got a boolean",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    ports: -25\n",
            "smtpgate.yml:4: approvals[0].ports: port -25 is out of range 1..65535",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    ports: {a: 1}\n",
            "smtpgate.yml:4: approvals[0].ports: expected a port number (1..65535), got a mapping",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    expires: [2027-01-01]\n",
            "smtpgate.yml:4: approvals[0].expires: expected a date, got a list",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    expires: 27-1-1\n",
            "smtpgate.yml:4: approvals[0].expires: '27-1-1' is not a date",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    state: [listening, []]\n",
            "smtpgate.yml:4: approvals[0].state[1]: "
            "expected one of listening, enabled or installed, got a list",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    bind: localhost\n",
            "smtpgate.yml:4: approvals[0].bind: 'localhost' is not one of loopback",
        ),
        (
            "version: 1\napprovals:\n  - reason: x\n    software: 25\n",
            "smtpgate.yml:4: approvals[0].software: '25' is not a software id",
        ),
        ("version: 1\n? [a, b]\n: c\n", "smtpgate.yml:2: keys must be plain words, got a list"),
        ("version: 1.0\n", "smtpgate.yml:1: version: expected an integer, got a number '1.0'"),
        ("version:\n", "smtpgate.yml:1: version: expected an integer, got nothing"),
        ("version: 1\nx: &a [*a]\n", "smtpgate.yml:2: unknown key 'x'"),
        ("version: 1\napprovals: &a [*a]\n", "smtpgate.yml:2: approvals[0]: expected a mapping"),
        ("version: 1\nowner: !team x\n", "smtpgate.yml:2: unsupported YAML tag '!team'"),
        ("version: 1\n\x00", "smtpgate.yml:2: invalid YAML: unacceptable character #x0000"),
        ("[" * 5000, "smtpgate.yml: invalid policy: YAML nested too deeply"),
        (
            "version: 1\napprovals:\n- reason: a\n  reason: b\n  reason: c\n",
            "smtpgate.yml:4: approvals[0]: duplicate key 'reason' (first at line 3)",
        ),
    ],
)
def test_more_validation_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy(text)
    assert str(err.value).startswith(message)


# -- never anything but a Policy or a PolicyError ------------------------------------

WORDS = [
    "version",
    "defaults",
    "approvals",
    "software",
    "ports",
    "bind",
    "state",
    "reason",
    "owner",
    "expires",
    "loopback",
    "listening",
    "enabled",
    "installed",
    "lmtp",
    "pass",
    "warn",
    "fail",
    "auto",
    "same",
    "all",
    "specific",
    "postfix",
    '"*"',
    "*",
    "&a",
    "*a",
    "1",
    "0",
    "025",
    "0x19",
    "65536",
    "2027-02-30",
    "2027-03-31",
    "::1",
    "10.0.0.1",
    "[",
    "]",
    "{",
    "}",
    "-",
    ":",
    "? ",
    "!!str",
    "!x",
    "~",
    "'",
    '"',
    "#",
    "|",
    ">",
    "<<",
    "---",
    "\t",
    "\n",
    "\n  ",
    "\n    ",
    "\n  - ",
    " ",
    ",",
    "%YAML 1.1\n",
    "\x00",
    "é",
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(WORDS)).map("".join)))
def test_any_text_gives_a_policy_or_a_policy_error(text: str) -> None:
    try:
        assert isinstance(policy(text), Policy)
    except PolicyError as err:
        assert str(err).startswith("smtpgate.yml")


SCALARS = st.one_of(
    st.sampled_from(WORDS[:30]),
    st.integers(-5, 70000),
    st.booleans(),
    st.none(),
    st.dates(),
    st.text(max_size=5),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(WORDS[:15]), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.fixed_dictionaries(
        {"version": st.one_of(st.just(1), SCALARS)},
        optional={"defaults": TREES, "approvals": TREES},
    )
)
def test_any_structure_gives_a_policy_or_a_policy_error(tree: dict) -> None:
    try:
        policy(yaml.safe_dump(tree))
    except PolicyError:
        pass


# -- defaults --------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:25", "127.0.0.53:25", "[::1]:25", "[::ffff:127.0.0.1]:25"]
)
def test_default_policy_passes_loopback(endpoint: str) -> None:
    judged = judge(default_policy(), listening(endpoint))
    assert judged.decision.outcome is Outcome.PASS
    assert judged.decision.rule is None
    assert (
        "the default policy allows SMTP bound only to loopback (CIS local-only mode)"
        in judged.decision.reason
    )


@pytest.mark.parametrize(
    "endpoint", ["0.0.0.0:25", "[::]:25", "10.0.0.5:2525", "[2001:db8::5]:587"]
)
def test_default_policy_fails_other_listeners(endpoint: str) -> None:
    assert judge(default_policy(), listening(endpoint)).decision.outcome is Outcome.FAIL


def test_default_reason_for_a_listener_on_all_interfaces() -> None:
    judged = judge(default_policy(), listening("0.0.0.0:25"))
    assert judged.decision.reason == (
        "Postfix listens on 0.0.0.0:25 (all interfaces) and no approval in the default "
        "policy covers it"
    )
    assert judged.per_listener[0][1] == judged.decision


def test_listeners_are_judged_one_by_one_and_the_worst_wins() -> None:
    judged = judge(default_policy(), listening("127.0.0.1:10025", "0.0.0.0:25", "[::]:25"))
    assert outcomes(judged) == [Outcome.PASS, Outcome.FAIL, Outcome.FAIL]
    assert judged.decision.outcome is Outcome.FAIL
    assert judged.decision.reason == (
        "Postfix listens on 0.0.0.0:25 (all interfaces) and [::]:25 (all interfaces), "
        "and no approval in the default policy covers them"
    )


def test_worst_is_warn_when_nothing_fails() -> None:
    pol = policy("version: 1\ndefaults:\n  listening: warn\n")
    judged = judge(pol, listening("127.0.0.1:25", "10.0.0.5:25"))
    assert outcomes(judged) == [Outcome.PASS, Outcome.WARN]
    assert judged.decision.outcome is Outcome.WARN
    assert judged.decision.reason == (
        "Postfix listens on 10.0.0.5:25 (specific address) and no approval in smtpgate.yml "
        "covers it; smtpgate.yml only warns about SMTP listening beyond loopback"
    )


@pytest.mark.parametrize("value", list(Outcome))
def test_loopback_default_is_configurable(value: Outcome) -> None:
    pol = policy(f"version: 1\ndefaults:\n  loopback: {value.value}\n")
    assert judge(pol, listening("[::1]:25")).decision.outcome is value


@pytest.mark.parametrize("value", list(Outcome))
def test_listening_default_is_configurable(value: Outcome) -> None:
    pol = policy(f"version: 1\ndefaults:\n  listening: {value.value}\n")
    assert judge(pol, listening("0.0.0.0:25")).decision.outcome is value
    assert judge(pol, listening("127.0.0.1:25")).decision.outcome is Outcome.PASS


@pytest.mark.parametrize(
    ("boots_init", "outcome", "why"),
    [
        (True, Outcome.FAIL, "the target boots an init system, so it would start at boot"),
        (False, Outcome.WARN, "only a warning because the target boots no init system"),
    ],
)
def test_enabled_auto_depends_on_init(boots_init: bool, outcome: Outcome, why: str) -> None:
    judged = judge(default_policy(), Finding(POSTFIX, State.ENABLED), boots_init=boots_init)
    assert judged.decision.outcome is outcome
    assert judged.decision.reason.startswith(
        "Postfix is enabled (configured to start) but not running and no approval in the "
        "default policy covers it; "
    )
    assert why in judged.decision.reason
    assert judged.per_listener == ()


@pytest.mark.parametrize("value", list(Outcome))
def test_enabled_default_is_configurable(value: Outcome) -> None:
    pol = policy(f"version: 1\ndefaults:\n  enabled: {value.value}\n")
    for boots_init in (True, False):
        finding = Finding(EXIM, State.ENABLED)
        assert judge(pol, finding, boots_init=boots_init).decision.outcome is value


def test_installed_only_warns_by_default() -> None:
    judged = judge(default_policy(), Finding(EXIM, State.INSTALLED), boots_init=True)
    assert judged.decision.outcome is Outcome.WARN
    assert judged.decision.reason == (
        "Exim is installed but not enabled or running and no approval in the default policy "
        "covers it; the default policy only warns about MTAs that are installed but not enabled"
    )


def test_installed_fail_example_fails_installed_and_enabled() -> None:
    pol = load_policy(DATA / "good" / "installed-fails.yml")
    assert judge(pol, Finding(EXIM, State.INSTALLED)).decision.outcome is Outcome.FAIL
    assert judge(pol, Finding(EXIM, State.ENABLED)).decision.outcome is Outcome.FAIL
    assert judge(pol, listening("127.0.0.1:25")).decision.outcome is Outcome.PASS


def test_lmtp_same_follows_the_smtp_defaults() -> None:
    lmtp = listening("127.0.0.1:24", software=DOVECOT, protocol=Protocol.LMTP)
    judged = judge(default_policy(), lmtp)
    assert judged.decision.outcome is Outcome.PASS
    assert judged.decision.reason.startswith("Dovecot (LMTP) listens on 127.0.0.1:24 (loopback)")


@pytest.mark.parametrize("value", list(Outcome))
def test_lmtp_default_overrides_scope_and_state(value: Outcome) -> None:
    pol = policy(f"version: 1\ndefaults:\n  lmtp: {value.value}\n")
    for finding in (
        listening("127.0.0.1:24", software=DOVECOT, protocol=Protocol.LMTP),
        listening("0.0.0.0:24", software=DOVECOT, protocol=Protocol.LMTP),
        Finding(DOVECOT, State.ENABLED, protocol=Protocol.LMTP),
    ):
        assert judge(pol, finding, boots_init=True).decision.outcome is value
    assert judge(pol, listening("0.0.0.0:25")).decision.outcome is Outcome.FAIL


# -- approvals -----------------------------------------------------------------------

RELAY = load_policy(DATA / "good" / "relay-until.yml")
RELAY_SOURCE = f"{DATA / 'good' / 'relay-until.yml'}:4"


def approve(**fields: str) -> Policy:
    """A policy with one approval made of `fields` (YAML values) and a reason."""
    body = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return policy(f"version: 1\napprovals:\n  - reason: approved\n{body}")


def test_approval_passes_with_reason_owner_and_source() -> None:
    judged = judge(RELAY, listening("0.0.0.0:587"))
    decision = judged.decision
    assert decision.outcome is Outcome.PASS
    assert decision.rule == RELAY_SOURCE
    assert decision.owner == "team-billing@example.com"
    assert decision.reason == (
        f"Postfix listens on 0.0.0.0:587 (all interfaces); approved by {RELAY_SOURCE} "
        "(reason: outbound relay for the billing app; owner: team-billing@example.com; "
        "valid through 2027-03-31)"
    )


def test_approval_covers_only_its_ports() -> None:
    judged = judge(RELAY, listening("0.0.0.0:587", "0.0.0.0:25"))
    assert outcomes(judged) == [Outcome.PASS, Outcome.FAIL]
    assert judged.decision.outcome is Outcome.FAIL
    assert judged.decision.rule is None
    assert judged.decision.reason == (
        f"Postfix listens on 0.0.0.0:25 (all interfaces) and no approval in {RELAY.name} covers it"
    )


@pytest.mark.parametrize(
    ("fields", "finding", "approved"),
    [
        ({"software": "postfix"}, listening("0.0.0.0:25"), True),
        ({"software": "POSTFIX"}, listening("0.0.0.0:25"), True),
        ({"software": "[exim, postfix]"}, listening("0.0.0.0:25"), True),
        ({"software": "exim"}, listening("0.0.0.0:25"), False),
        ({"software": '"*"'}, listening("0.0.0.0:25", software=EXIM), True),
        ({"ports": "25"}, listening("0.0.0.0:25"), True),
        ({"ports": "[465, 587]"}, listening("0.0.0.0:25"), False),
        ({"bind": "all"}, listening("[::]:25"), True),
        ({"bind": "all"}, listening("10.0.0.5:25"), False),
        ({"bind": "specific"}, listening("10.0.0.5:25"), True),
        ({"bind": "loopback"}, listening("[::ffff:127.0.0.1]:25"), True),
        ({"bind": "[loopback, specific]"}, listening("0.0.0.0:25"), False),
        ({"bind": "10.0.0.5"}, listening("10.0.0.5:25"), True),
        ({"bind": "10.0.0.5"}, listening("10.0.0.6:25"), False),
        ({"bind": "10.0.0.5"}, listening("[::ffff:10.0.0.5]:25"), True),
        ({"bind": "'::ffff:10.0.0.5'"}, listening("10.0.0.5:25"), True),
        ({"bind": "'2001:0db8:0:0:0:0:0:25'"}, listening("[2001:db8::25]:25"), True),
        ({"bind": "'2001:DB8::25'"}, listening("[2001:db8::26]:25"), False),
        ({"bind": "0.0.0.0"}, listening("[::]:25"), False),
        ({"state": "listening"}, listening("0.0.0.0:25"), True),
        ({"state": "[enabled, installed]"}, listening("0.0.0.0:25"), False),
        ({"state": "enabled"}, Finding(POSTFIX, State.ENABLED), True),
        ({"state": "installed"}, Finding(POSTFIX, State.ENABLED), False),
        ({"software": "postfix", "state": "installed"}, Finding(POSTFIX, State.INSTALLED), True),
        ({"ports": "25"}, Finding(POSTFIX, State.ENABLED), False),
        ({"bind": "loopback"}, Finding(POSTFIX, State.INSTALLED), False),
        ({}, Finding(POSTFIX, State.INSTALLED), True),
        (
            {"software": "postfix", "ports": "25", "bind": "all", "state": "listening"},
            listening("0.0.0.0:25"),
            True,
        ),
        (
            {"software": "postfix", "ports": "25", "bind": "all", "state": "listening"},
            listening("0.0.0.0:25", software=EXIM),
            False,
        ),
    ],
)
def test_approval_matches_when_every_given_field_matches(
    fields: dict[str, str], finding: Finding, approved: bool
) -> None:
    judged = judge(approve(**fields), finding, boots_init=True)
    assert (judged.decision.outcome is Outcome.PASS) is approved
    assert (judged.decision.rule == "smtpgate.yml:3") is approved


def test_first_matching_approval_wins() -> None:
    pol = policy("""version: 1
approvals:
  - software: exim
    reason: not this one
  - software: postfix
    reason: this one
  - reason: catch-all
""")
    assert judge(pol, listening("0.0.0.0:25")).decision.rule == "smtpgate.yml:5"


def test_listeners_can_be_approved_by_different_approvals() -> None:
    pol = policy("""version: 1
approvals:
  - ports: 25
    reason: mx
  - ports: 587
    reason: submission
""")
    judged = judge(pol, listening("0.0.0.0:25", "0.0.0.0:587"))
    assert [d.rule for _, d in judged.per_listener] == ["smtpgate.yml:3", "smtpgate.yml:5"]
    assert judged.decision.outcome is Outcome.PASS
    assert judged.decision.rule == "smtpgate.yml:3"
    assert "reason: mx" in judged.decision.reason and "reason: submission" in judged.decision.reason


def test_loopback_filter_example_survives_loopback_fail() -> None:
    pol = load_policy(DATA / "good" / "loopback-filter.yml")
    strict = policy_from_text(DOCS.read_text().split("```yaml\n")[2].split("```")[0], "doc.yml")
    judged = judge(strict, listening("127.0.0.1:10025", "127.0.0.1:25"))
    assert outcomes(judged) == [Outcome.PASS, Outcome.FAIL]
    assert judge(pol, listening("127.0.0.1:10025")).decision.owner == "mail-platform@example.com"


# -- expiry ----------------------------------------------------------------------------

EXPIRES = datetime.date(2027, 3, 31)


def test_approval_still_approves_on_its_expiry_date() -> None:
    assert judge(RELAY, listening("0.0.0.0:587"), today=EXPIRES).decision.outcome is Outcome.PASS


def test_approval_stops_approving_the_day_after() -> None:
    judged = judge(RELAY, listening("0.0.0.0:587"), today=EXPIRES + datetime.timedelta(days=1))
    assert judged.decision.outcome is Outcome.FAIL
    assert judged.decision.rule is None and judged.decision.owner is None
    assert judged.decision.reason == (
        f"approval at {RELAY_SOURCE} expired after 2027-03-31; Postfix listens on 0.0.0.0:587 "
        f"(all interfaces) and no unexpired approval in {RELAY.name} covers it"
    )


def test_an_unexpired_approval_later_in_the_file_still_approves() -> None:
    pol = policy("""version: 1
approvals:
  - software: postfix
    reason: old
    expires: 2026-01-31
  - software: postfix
    reason: renewed
    expires: 2027-01-31
""")
    judged = judge(pol, listening("0.0.0.0:25"))
    assert judged.decision.outcome is Outcome.PASS and judged.decision.rule == "smtpgate.yml:6"


def test_expired_approval_falls_back_to_the_default_and_says_so() -> None:
    pol = approve(state="[listening, enabled]", expires="2026-01-31")
    loopback = judge(pol, listening("127.0.0.1:25"))
    assert loopback.decision.outcome is Outcome.PASS
    assert loopback.decision.reason.startswith(
        "approval at smtpgate.yml:3 expired after 2026-01-31; Postfix listens on 127.0.0.1:25"
    )
    enabled = judge(pol, Finding(POSTFIX, State.ENABLED), boots_init=False)
    assert enabled.decision.outcome is Outcome.WARN
    assert enabled.decision.reason.startswith("approval at smtpgate.yml:3 expired after")


def test_without_today_the_current_date_decides() -> None:
    finding = listening("0.0.0.0:25")
    past, future = approve(expires="2001-01-01"), approve(expires="2999-12-31")
    assert evaluate(past, finding, boots_init=False).decision.outcome is Outcome.FAIL
    assert evaluate(future, finding, boots_init=False).decision.outcome is Outcome.PASS


# -- odd findings ------------------------------------------------------------------------


def test_listening_finding_without_listeners_is_judged_as_a_whole() -> None:
    judged = judge(default_policy(), Finding(POSTFIX, State.LISTENING))
    assert judged.decision.outcome is Outcome.FAIL
    assert judged.decision.reason == (
        "Postfix is listening and no approval in the default policy covers it"
    )
    assert judged.per_listener == ()


def test_unnamed_software_still_reads_as_a_sentence() -> None:
    finding = listening("0.0.0.0:2525", software=Software("unknown", ""))
    assert judge(default_policy(), finding).decision.reason.startswith(
        "An unidentified SMTP service listens on 0.0.0.0:2525 (all interfaces) and no "
    )
    named_by_id = listening("0.0.0.0:1025", software=Software("mailpit", ""))
    assert judge(default_policy(), named_by_id).decision.reason.startswith("mailpit listens")

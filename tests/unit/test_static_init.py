"""What would really start: the init model (issue 11 §2), control commands (§1, static),
entrypoint wrappers and environment branches (§3). Roots captured from the fixture images
(tests/unit/data/static/README.md) plus small trees written inline for each init and command."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest

from smtpgate.model import State
from smtpgate.policy import default_policy, evaluate
from smtpgate.static import DirFS, ImageConfig, analyse, shell, static_findings
from smtpgate.static.command import analyse_command, control_command

ROOTS = Path(__file__).parent / "data" / "static" / "roots"
TODAY = datetime.date(2026, 12, 1)


def tree(tmp_path: Path, files: dict[str, str], base: str | None = None) -> DirFS:
    if base is not None:
        shutil.copytree(ROOTS / base, tmp_path, symlinks=True, dirs_exist_ok=True)
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            target.symlink_to(text[2:])
        else:
            target.write_text(text)
            target.chmod(0o755)
    return DirFS(tmp_path)


def verdicts(fs: DirFS, config: ImageConfig, boots_init: bool | None = None) -> dict[str, str]:
    """{software: outcome} under the default policy, as --static judges."""
    facts = analyse(fs, image_config=config, boots_init=boots_init)
    judged = [evaluate(default_policy(), f, boots_init=facts.boots_init, today=TODAY) for f in static_findings(facts)]
    return {j.finding.software.id: j.decision.outcome.value for j in judged}


def enabled(fs: DirFS, config: ImageConfig) -> list[tuple[str, str, str]]:
    facts = analyse(fs, image_config=config)
    return sorted((e.software, e.mechanism, e.evidence().kind) for e in facts.enabled)


# -- §2: what each init reads ------------------------------------------------------------------

SUPERVISORD = ImageConfig(cmd=("/usr/bin/supervisord", "-n", "-c", "/etc/supervisor/supervisord.conf"))


def test_supervisord_pid1_does_not_start_debian_links(tmp_path):
    """Captured from supervisord-off: Debian's postfix links are there, its program is autostart=false."""
    fs = tree(tmp_path, {}, base="supervisord-off")
    got = enabled(fs, SUPERVISORD)
    assert ("postfix", "systemd", "dormant") in got and ("postfix", "sysv", "dormant") in got
    assert verdicts(fs, SUPERVISORD) == {"postfix": "warn"}
    text = " ".join(e.text for e in analyse(fs, image_config=SUPERVISORD).enabled)
    assert "not started: PID 1 would be supervisord, which reads only supervisord configuration" in text
    # --boots-init: judged as a booted systemd/SysV machine, the links start it
    assert verdicts(fs, SUPERVISORD, boots_init=True) == {"postfix": "fail"}


def test_supervisord_autostart_program_is_started_by_the_image(tmp_path):
    fs = tree(tmp_path, {"/etc/supervisor/conf.d/apps.conf": "[program:mta]\ncommand=/usr/local/bin/mta.sh\n",
                         "/usr/local/bin/mta.sh": "#!/bin/sh\nmkdir -p /run/x\nexec /usr/sbin/postfix start-fg\n"},
              base="supervisord-off")
    got = enabled(fs, SUPERVISORD)
    assert ("postfix", "supervisord", "command") in got  # what its program's script starts
    assert verdicts(fs, SUPERVISORD) == {"postfix": "fail"}


def test_supervisord_program_script_that_runs_supervisorctl_start(tmp_path):
    """All-in-one style: a start-up program prepares, then starts the autostart=false MTA program."""
    files = {"/etc/supervisor/conf.d/start.conf": "[program:start]\ncommand=/usr/local/bin/start-mail.sh\n"
                                                  "autostart=true\nautorestart=false\n",
             "/usr/local/bin/start-mail.sh": "#!/bin/bash\n_start() { supervisorctl start \"$1\"; }\n"
                                             "for i in 1 2 3; do sleep 1; done\n_start postfix\n"}
    fs = tree(tmp_path, files, base="supervisord-off")
    facts = analyse(fs, image_config=SUPERVISORD)
    (started,) = [e for e in facts.enabled if e.by_command]
    assert started.software == "postfix" and started.path == "/usr/local/bin/start-mail.sh" and started.line == 2
    assert "supervisord [program:postfix] runs `/usr/sbin/postfix start-fg`" in started.text
    assert verdicts(fs, SUPERVISORD) == {"postfix": "fail"}


def test_systemd_pid1_reads_units_and_sysv_links(tmp_path):
    fs = tree(tmp_path, {}, base="postfix-all")
    got = enabled(fs, ImageConfig(entrypoint=("/lib/systemd/systemd",)))
    assert ("postfix", "systemd", "command") in got and ("postfix", "sysv", "command") in got


def test_sysvinit_reads_inittab_runlevel(tmp_path):
    inittab = "id:3:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl3:3:wait:/etc/init.d/rc 3\n"
    fs = tree(tmp_path, {"/etc/inittab": inittab, "/etc/rc3.d/S02exim4": "->../init.d/exim4",
                         "/etc/rc2.d/S01postfix": "->../init.d/postfix", "/sbin/init": "\x7fELF"})
    got = enabled(fs, ImageConfig(cmd=("/sbin/init",)))
    assert got == [("exim", "sysv", "command")]  # runlevel 3 only: rc2.d is not entered
    fs = tree(tmp_path / "b", {"/etc/inittab": "::respawn:/usr/sbin/exim -bd -q30m\n"})
    assert enabled(fs, ImageConfig(cmd=("/sbin/init",))) == [("exim", "sysv", "command")]


def test_busybox_inittab_running_openrc_reads_its_runlevels(tmp_path):
    inittab = "::sysinit:/sbin/openrc sysinit\n::wait:/sbin/openrc default\n::shutdown:/sbin/openrc shutdown\n"
    fs = tree(tmp_path, {"/etc/inittab": inittab, "/etc/runlevels/default/postfix": "->/etc/init.d/postfix"})
    assert enabled(fs, ImageConfig(cmd=("/sbin/init",))) == [("postfix", "openrc", "command")]


@pytest.mark.parametrize(("value", "kind"), [("true", "command"), ("false", None), ("", "command")])
def test_supervisord_autostart_from_the_environment(tmp_path, value, kind):
    conf = "[program:mta]\ncommand=%(ENV_MTA)s -bdf\nautostart=%(ENV_WITH_MTA)s\n"
    fs = tree(tmp_path, {"/etc/supervisord.conf": conf})
    env = {"MTA": "/usr/sbin/exim4", **({"WITH_MTA": value} if value else {})}
    got = enabled(fs, ImageConfig(cmd=("supervisord", "-n"), env=env))
    assert got == ([("exim", "supervisord", kind)] if kind else [])


def test_openrc_runlevels(tmp_path):
    fs = tree(tmp_path, {"/etc/runlevels/default/postfix": "->/etc/init.d/postfix"})
    assert enabled(fs, ImageConfig(cmd=("/sbin/openrc-init",))) == [("postfix", "openrc", "command")]


def test_s6_overlay_user_bundle_and_services_d(tmp_path):
    fs = tree(tmp_path, {
        "/etc/s6-overlay/s6-rc.d/exim/run": "#!/command/execlineb -P\nexim -bdf -q30m\n",
        "/etc/s6-overlay/s6-rc.d/postfix/run": "#!/bin/sh\nexec postfix start-fg\n",
        "/etc/s6-overlay/s6-rc.d/user/contents.d/exim": "",
        "/init": "#!/bin/sh\n"})
    facts = analyse(fs, image_config=ImageConfig(entrypoint=("/init",)))
    assert sorted((e.software, e.mechanism, e.evidence().kind) for e in facts.enabled) == [
        ("exim", "s6", "command")]
    assert any("postfix: not in the s6-rc `user` bundle" in p for p in facts.problems)


@pytest.mark.parametrize(("init", "script"), [(("/sbin/my_init",), "/etc/my_init.d/10-mail.sh"),
                                              (("/init",), "/etc/cont-init.d/20-mail")])
def test_boot_scripts_of_my_init_and_s6_overlay(tmp_path, init, script):
    fs = tree(tmp_path, {script: "#!/bin/sh\n[ -n \"$NO_MAIL\" ] || service postfix start\n",
                         "/sbin/my_init": "#!/usr/bin/python3 -u\n", "/init": "#!/bin/sh\n",
                         "/etc/s6-overlay/s6-rc.d/user/contents.d/.keep": ""})
    got = analyse(fs, image_config=ImageConfig(entrypoint=init)).enabled  # NO_MAIL unset: it starts
    assert [(e.software, e.path, e.by_command) for e in got] == [("postfix", script, True)]
    assert analyse(fs, image_config=ImageConfig(entrypoint=init, env={"NO_MAIL": "1"})).enabled == ()


def test_runsvdir_reads_only_the_dir_it_scans(tmp_path):
    fs = tree(tmp_path, {"/srv/sv/mta/run": "#!/bin/sh\nexec exim4 -bdf\n",
                         "/etc/service/postfix/run": "#!/bin/sh\nexec postfix start-fg\n"})
    got = enabled(fs, ImageConfig(cmd=("runsvdir", "-P", "/srv/sv")))
    assert got == [("exim", "runit", "command"), ("postfix", "runit", "dormant")]


def test_down_file_means_not_started(tmp_path):
    fs = tree(tmp_path, {}, base="runit-late")
    facts = analyse(fs, image_config=ImageConfig(cmd=("runsvdir", "-P", "/etc/service")))
    assert not [e for e in facts.enabled if e.mechanism == "runit"]
    assert any("/etc/service/postfix: has a `down` file" in p for p in facts.problems)


@pytest.mark.parametrize("wrapper", [("tini", "--"), ("dumb-init",), ("catatonit", "--"), ("docker-init", "--")])
def test_minimal_inits_only_start_their_child(tmp_path, wrapper):
    fs = tree(tmp_path, {}, base="postfix-all")
    config = ImageConfig(entrypoint=(*wrapper, "python3", "-m", "http.server"))
    facts = analyse(fs, image_config=config)
    assert facts.init == "python3" and not facts.boots_init
    assert verdicts(fs, config) == {"postfix": "warn"}
    assert all("starts where" in e.text and "(PID 1 would be python3, no init)" in e.text for e in facts.enabled)


# -- §1 static: control commands ------------------------------------------------------------------


def test_runit_late_sv_up_is_enabled_by_the_image_command(tmp_path):
    """Captured from runit-late: the down-file service is brought up by `sv up postfix` after 12 sleeps."""
    fs = tree(tmp_path, {}, base="runit-late")
    config = ImageConfig(cmd=("/usr/local/bin/start.sh",), env={"SVDIR": "/etc/service"})
    facts = analyse(fs, image_config=config)
    (started,) = [e for e in facts.enabled if e.by_command]
    assert started.software == "postfix" and started.path == "/usr/local/bin/start.sh" and started.line == 9
    assert "runit service postfix (defined by /etc/service/postfix/run)" in started.text
    assert "after sleeping 1 s (at least: in a loop)" in started.text
    assert verdicts(fs, config) == {"postfix": "fail"}


CONTROL = {
    "supervisorctl start mta": ("supervisord", ["mta"]),
    "supervisorctl -c /etc/s.conf restart mail:mta": ("supervisord", ["mail:mta"]),
    "s6-svc -u /run/service/mta": ("s6", ["/run/service/mta"]),
    "s6-rc -u change mta": ("s6", ["mta"]),
    "sv up mta": ("runit", ["mta"]),
    "sv -w 5 start /etc/service/mta": ("runit", ["/etc/service/mta"]),
    "service mta start": ("sysv", ["mta"]),
    "invoke-rc.d mta start": ("sysv", ["mta"]),
    "/etc/init.d/mta start": ("sysv", ["mta"]),
    "rc-service mta start": ("openrc", ["mta"]),
    "systemctl start mta.service": ("systemd", ["mta.service"]),
}


@pytest.mark.parametrize("line", sorted(CONTROL))
def test_control_commands_parsed(line):
    assert control_command(tuple(line.split())) == CONTROL[line]


@pytest.mark.parametrize("line", ["sv down mta", "s6-svc -d /run/service/mta", "s6-rc -d change mta",
                                  "supervisorctl stop mta", "service mta stop", "systemctl status mta"])
def test_control_commands_that_start_nothing(line):
    assert control_command(tuple(line.split())) is None


MTA_DEFINED = {  # a service named "mta" everywhere: only its definition says it is Exim
    "/etc/supervisor/supervisord.conf": "[include]\nfiles = conf.d/*.conf\n",
    "/etc/supervisor/conf.d/mta.conf": "[program:mta]\ncommand=/usr/sbin/exim4 -bdf -q30m\nautostart=false\n",
    "/etc/services.d/mta/run": "#!/bin/sh\nexec exim4 -bdf\n", "/etc/services.d/mta/down": "",
    "/etc/s6-overlay/s6-rc.d/mta/run": "#!/bin/sh\nexec exim4 -bdf\n",
    "/etc/service/mta/run": "#!/bin/sh\nexec 2>&1\nexec /usr/local/bin/mta-wrapper\n", "/etc/service/mta/down": "",
    "/usr/local/bin/mta-wrapper": "#!/bin/bash\nexec /usr/sbin/exim4 -bdf -q30m\n",
    "/etc/init.d/mta": "#!/bin/sh\nDAEMON=/usr/sbin/exim4\ncase \"$1\" in start) $DAEMON -bd -q30m ;; esac\n",
    "/etc/systemd/system/mta.service": "[Service]\nExecStart=/usr/sbin/exim4 -bdf -q30m\n",
}


@pytest.mark.parametrize("line", sorted(CONTROL))
def test_control_command_resolved_by_the_definition(tmp_path, line):
    fs = tree(tmp_path, MTA_DEFINED)
    out = analyse_command(fs, ImageConfig(cmd=("sh", "-c", f"sleep 2; {line}; wait")), [])
    (got,) = out.enabled
    assert got.software == "exim" and got.by_command and "by its name" not in got.text


def test_control_command_falls_back_to_the_name(tmp_path):
    fs = tree(tmp_path, {})
    out = analyse_command(fs, ImageConfig(cmd=("sh", "-c", "supervisorctl start postfix")), [])
    (got,) = out.enabled
    assert got.software == "postfix" and "(by its name)" in got.text
    out = analyse_command(fs, ImageConfig(cmd=("sh", "-c", "service postfix start; sv up exim4")), [])
    assert [e.software for e in out.enabled] == ["postfix", "exim"]


def test_supervisorctl_start_of_autostart_false_program_fails(tmp_path):
    files = {"/usr/local/bin/start.sh": "#!/bin/sh\nsupervisord -c /etc/supervisor/supervisord.conf\n"
                                        "for i in 1 2 3; do sleep 1; done\nsupervisorctl start postfix\n"}
    fs = tree(tmp_path, files, base="supervisord-off")
    assert verdicts(fs, ImageConfig(entrypoint=("/usr/local/bin/start.sh",))) == {"postfix": "fail"}


# -- §3: entrypoint wrappers -------------------------------------------------------------------------

WRAPPERS = {
    "exec \"$@\"": "exim4",
    "exec \"${@}\"": "exim4",
    "\"$@\"": "exim4",
    "set -- tini -- \"$@\"\nexec \"$@\"": "exim4",
    "exec gosu Debian-exim \"$@\"": "exim4",
    "exec su-exec Debian-exim:Debian-exim \"$@\"": "exim4",
    "exec tini -- \"$@\"": "exim4",
    "exec /usr/bin/env \"$@\"": "exim4",
    "main() { exec \"$@\"; }\nmain \"$@\"": "exim4",
}


@pytest.mark.parametrize("tail", sorted(WRAPPERS))
def test_wrapper_runs_the_image_cmd(tmp_path, tail):
    fs = tree(tmp_path, {"/usr/local/bin/docker-entrypoint.sh": f"#!/bin/sh\nset -e\nmkdir -p /x\n{tail}\n"})
    config = ImageConfig(entrypoint=("docker-entrypoint.sh",), cmd=("exim4", "-bdf", "-q30m"))
    out = analyse_command(fs, config, [])
    (got,) = out.enabled
    assert got.software == "exim" and got.by_command and got.path == "/usr/local/bin/docker-entrypoint.sh"


def test_wrapper_captured_dash_options_become_exim_options(tmp_path):
    """Captured from wrapper-exec: `docker run IMAGE -q1h` makes the script `set -- exim4 "$@"`."""
    fs = tree(tmp_path, {}, base="wrapper-exec")
    for cmd in (("exim4", "-bdf", "-q30m"), ("-bd", "-q1h")):
        out = analyse_command(fs, ImageConfig(entrypoint=("docker-entrypoint.sh",), cmd=cmd), [])
        assert [(e.software, e.by_command) for e in out.enabled] == [("exim", True)], cmd
        assert out.init == "exim4"
    out = analyse_command(fs, ImageConfig(entrypoint=("docker-entrypoint.sh",), cmd=("bash",)), [])
    assert out.enabled == [] and out.init == "bash"


def test_sh_dash_c_gets_its_positional_parameters(tmp_path):
    fs = tree(tmp_path, {})
    config = ImageConfig(entrypoint=("/bin/sh", "-c", 'mkdir -p /run/x && exec "$@"', "sh"), cmd=("exim", "-bd"))
    out = analyse_command(fs, config, [])
    assert [(e.software, e.by_command) for e in out.enabled] == [("exim", True)] and out.init == "exim"


def test_wrapper_execs_supervisord_and_a_custom_init_script_is_followed(tmp_path):
    fs = tree(tmp_path, {"/usr/local/bin/docker-entrypoint.sh": "#!/bin/sh\nexec \"$@\"\n",
                         "/init": "#!/bin/bash\nmkdir -p /run/postfix\nexec postfix start-fg\n"},
              base="supervisord-off")
    config = ImageConfig(entrypoint=("docker-entrypoint.sh",), cmd=SUPERVISORD.cmd)
    assert analyse(fs, image_config=config).init == "supervisord"
    assert verdicts(fs, config) == {"postfix": "warn"}  # Debian's links: dormant under supervisord
    assert verdicts(fs, ImageConfig(entrypoint=("/init",))) == {"postfix": "fail"}


def test_exec_dollar_zero_reruns_the_script_with_new_parameters(tmp_path):
    script = "#!/bin/sh\nif [ \"$1\" = mail ]; then set -- exim4 -bd; exec \"$0\" \"$@\"; fi\nexec \"$@\"\n"
    fs = tree(tmp_path, {"/entry.sh": script})
    out = analyse_command(fs, ImageConfig(entrypoint=("/entry.sh",), cmd=("mail",)), [])
    assert [e.software for e in out.enabled] == ["exim"]


# -- §3: branches on the environment ------------------------------------------------------------------

RELAY = ("#!/bin/sh\n"
         "if [ \"$ENABLE_RELAY\" = 1 ]; then\n  postfix start\nfi\n"
         "case \"${MODE:-web}\" in\n  mail|all) exim4 -bd -q30m ;;\n  *) echo web ;;\nesac\n"
         "[ -n \"$WITH_SV\" ] && sv up opensmtpd\n"
         "exec python3 -m http.server\n")


def _relay(tmp_path: Path, env: dict[str, str]) -> tuple[list, dict[str, str]]:
    fs = tree(tmp_path, {"/start.sh": RELAY})
    config = ImageConfig(entrypoint=("/start.sh",), env=env)
    return list(analyse(fs, image_config=config).enabled), verdicts(fs, config)


def test_env_branch_decided_true(tmp_path):
    found, verdict = _relay(tmp_path, {"ENABLE_RELAY": "1", "MODE": "all", "WITH_SV": "yes"})
    assert sorted((e.software, e.by_command, e.condition) for e in found) == [
        ("exim", True, ""), ("opensmtpd", True, ""), ("postfix", True, "")]
    assert verdict == {"exim": "fail", "opensmtpd": "fail", "postfix": "fail"}


def test_env_branch_decided_false(tmp_path):
    found, verdict = _relay(tmp_path, {"ENABLE_RELAY": "0", "MODE": "web", "WITH_SV": ""})
    assert found == [] and verdict == {}
    facts = analyse(DirFS(tmp_path), image_config=ImageConfig(entrypoint=("/start.sh",), env={"ENABLE_RELAY": "0"}))
    notes = [p for p in facts.problems if "but not with the environment given" in p]
    assert notes == ['/start.sh:3: `postfix start` would start Postfix, but not with the environment given: '
                     '`[ "$ENABLE_RELAY" = 1 ]` is false (a deployment that makes it true starts it)']


def test_env_branch_unknown_may_start_when(tmp_path):
    found, verdict = _relay(tmp_path, {})
    assert sorted((e.software, e.condition) for e in found) == [
        ("exim", "`\"${MODE:-web}\" matches mail|all`"), ("opensmtpd", "`[ -n \"$WITH_SV\" ]`"),
        ("postfix", "`[ \"$ENABLE_RELAY\" = 1 ]`")]
    assert all(e.evidence().kind == "conditional" and "it may start when" in e.evidence().text for e in found)
    assert verdict == {"exim": "warn", "opensmtpd": "warn", "postfix": "warn"}


@pytest.mark.parametrize(("line", "condition"), [
    ("mkdir -p /x && chown mail /x && exec exim -bd", ""),
    ("[ -n \"$RELAY\" ] && mkdir -p /x && exec exim -bd", "`[ -n \"$RELAY\" ] && mkdir -p /x`"),
    ("grep -q relay /etc/mode || exec exim -bd", "`not (grep -q relay /etc/mode)`"),
    ("[ -z \"$RELAY\" ] || exec exim -bd", "`not ([ -z \"$RELAY\" ])`"),
    ("[ -z \"$HOME\" ] || exec exim -bd", ""),
    ("[ -n \"$HOME\" ] && [ \"$MODE\" = relay ] && exec exim -bd", ""),
    ("false && exec exim -bd; true", None),
])
def test_and_or_lists(line, condition):
    found = [c for c in shell.commands(line, [], "x", {"HOME": "/root", "MODE": "relay"}) if c.name == "exim"]
    assert [c.condition for c in found] == ([] if condition is None else [condition])


def test_env_branch_on_a_command_result_is_undecided(tmp_path):
    fs = tree(tmp_path, {"/s.sh": "#!/bin/sh\nif grep -q relay /etc/mode; then exec postfix start-fg; fi\n"
                                  "exec sleep infinity\n"})
    (got,) = analyse(fs, image_config=ImageConfig(cmd=("/s.sh",))).enabled
    assert got.condition == "`grep -q relay /etc/mode`" and not got.by_command
    finding = static_findings(analyse(fs, image_config=ImageConfig(cmd=("/s.sh",))))[0]
    assert finding.state is State.ENABLED and finding.starts_only_maybe


def test_else_branch_of_an_unset_variable_may_start(tmp_path):
    fs = tree(tmp_path, {"/s.sh": "#!/bin/sh\nif [ -z \"$RELAY\" ]; then echo local; else exec postfix start-fg; fi\n"})
    (got,) = analyse(fs, image_config=ImageConfig(cmd=("/s.sh",))).enabled
    assert got.condition == "`not ([ -z \"$RELAY\" ])`"
    (got,) = analyse(fs, image_config=ImageConfig(cmd=("/s.sh",), env={"RELAY": "smarthost"})).enabled
    assert got.by_command and not got.condition


# -- hostile scripts ---------------------------------------------------------------------------------


def test_deep_nesting_huge_scripts_and_sourcing_loops_are_bounded(tmp_path):
    deep = "( " * 5000 + "exim -bd" + " )" * 5000
    problems: list[str] = []
    assert shell.commands(deep, problems, "deep") == [] and any("nested more than" in p for p in problems)
    huge = "echo x\n" * 300_000 + "exim -bd\n"
    problems = []
    shell.commands(huge, problems, "huge")
    assert any("larger than" in p for p in problems)
    fs = tree(tmp_path, {"/a.sh": "#!/bin/sh\n. /b.sh\n", "/b.sh": "#!/bin/sh\n. /a.sh\nexim -bd\n"})
    out = analyse_command(fs, ImageConfig(cmd=("/a.sh",)), [])
    assert [e.software for e in out.enabled] == ["exim"]
    bombs = {
        "and-chain": "true && " * 5000 + "exim -bd",
        "word-nesting": "X=" + "${A:-" * 3000 + "x" + "}" * 3000 + "\nexim -bd",
        "loop-bomb": "for a in $(seq 20) 1 2 3 4 5 6 7 8 9 10; do " * 6 + "echo $a; " + "done; " * 6 + "\nexim -bd",
        "call-bomb": "".join(f"f{i}() {{ f{i + 1}; f{i + 1}; }}\n" for i in range(30)) + "f0\nexim -bd",
        "long-pipe": "a | " * 6000 + "exim -bd",
        "many-commands": "echo x\n" * 20_000 + "exim -bd\n",
    }
    for name, text in bombs.items():
        found = [c for c in shell.commands(text, [], name) if c.text == "exim -bd"]
        assert found and not found[0].condition, name  # never hidden behind the bomb
    recursive = "f() { f; exim -bd; }\nf\n"
    assert [c.text for c in shell.commands(recursive)] == ["f", "exim -bd"]  # a recursive call is not followed

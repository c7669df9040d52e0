"""Command-line listen options of the registry's entries (`Mta.argv_listen`), as their own
argument parsers read them (argparse for aiosmtpd, getopt for Python's smtpd, pflag for
Mailpit, Go's flag package for MailHog, Exim's -oX)."""

from __future__ import annotations

import pytest

from smtpgate.model import BindScope
from smtpgate.software import get

CASES = [
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n"), ("localhost", "8025", BindScope.LOOPBACK)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n", "-l", "0.0.0.0:25"), ("0.0.0.0", "25", BindScope.ALL)),
    ("aiosmtpd", ("aiosmtpd", "-l127.0.0.1:2525"), ("127.0.0.1", "2525", BindScope.LOOPBACK)),
    ("aiosmtpd", ("aiosmtpd", "-l", "[::1]:25", "--listen=[::]:25"), ("::", "25", BindScope.ALL)),
    ("aiosmtpd", ("aiosmtpd", "-l"), ("localhost", "8025", BindScope.LOOPBACK)),  # no value: the default
    # As aiosmtpd 1.4.6's own parseargs reads them (run in the pip-smtp-server fixture, 2026-12-02:
    # host, port): an empty host before a colon is localhost, no colon is a host on 8025, an empty
    # value (asyncio: host '' is every interface) is all; groups, prefixes, an omitted optional value
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-l", ":2525"), ("localhost", "2525", BindScope.LOOPBACK)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-l", "0.0.0.0"), ("0.0.0.0", "8025", BindScope.ALL)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-l", "127.0.0.1"), ("127.0.0.1", "8025", BindScope.LOOPBACK)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n", "-l", ""), ("all", "8025", BindScope.ALL)),
    ("aiosmtpd", ("aiosmtpd", "--listen="), ("all", "8025", BindScope.ALL)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-nl", "0.0.0.0:25"), ("0.0.0.0", "25", BindScope.ALL)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "--lis", "0.0.0.0:25"), ("0.0.0.0", "25", BindScope.ALL)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-l", "-n"), ("localhost", "8025", BindScope.LOOPBACK)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n", "--listen", "0.0.0.0:25", "-l"),
     ("localhost", "8025", BindScope.LOOPBACK)),  # the last -l, without its optional value: the default
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-c", "aiosmtpd.handlers.Debugging", "-l", "0.0.0.0:25"),
     ("0.0.0.0", "25", BindScope.ALL)),
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n", "--l", "0.0.0.0:25"), ("0.0.0.0", "25", BindScope.ALL)),
    ("python-smtpd", ("python3", "-msmtpd", "-n", "-c", "DebuggingServer", "0.0.0.0:25"),
     ("0.0.0.0", "25", BindScope.ALL)),  # -m glued to the module name
    # python's own -Wall is not aiosmtpd's -l
    ("aiosmtpd", ("python3", "-Wall", "-m", "aiosmtpd", "-n"), ("localhost", "8025", BindScope.LOOPBACK)),
    # aiosmtpd refuses a bracketed host without a port ("Invalid port number"); read as that host
    ("aiosmtpd", ("python3", "-m", "aiosmtpd", "--listen=[::1]"), ("::1", "8025", BindScope.LOOPBACK)),
    ("python-smtpd", ("python3", "-m", "smtpd", "-n", "-c", "DebuggingServer", ":25"), ("all", "25", BindScope.ALL)),
    ("python-smtpd", ("python3", "-m", "smtpd", "-n", "--class", "DebuggingServer", "-s", "100",
                      "127.0.0.1:1025", "relay:25"), ("127.0.0.1", "1025", BindScope.LOOPBACK)),
    ("python-smtpd", ("python3", "-m", "smtpd", "-n"), ("localhost", "8025", BindScope.LOOPBACK)),
    # as Python 3.11's smtpd.parseargs (getopt 'nVhc:s:du') reads them
    ("python-smtpd", ("python3", "-m", "smtpd", "-nc", "DebuggingServer", "0.0.0.0:25"),
     ("0.0.0.0", "25", BindScope.ALL)),
    ("python-smtpd", ("python3", "-m", "smtpd", "--cl", "DebuggingServer", "127.0.0.1:25"),
     ("127.0.0.1", "25", BindScope.LOOPBACK)),
    ("python-smtpd", ("python3", "-m", "smtpd", "-cDebuggingServer", "0.0.0.0:2525"),
     ("0.0.0.0", "2525", BindScope.ALL)),
    ("mailpit", ("mailpit",), ("::", "1025", BindScope.ALL)),
    ("mailpit", ("/mailpit", "--smtp", "127.0.0.1:1025"), ("127.0.0.1", "1025", BindScope.LOOPBACK)),
    ("mailpit", ("/mailpit", "--smtp", ":2525"), ("all", "2525", BindScope.ALL)),  # Go: an empty host is all
    ("mailpit", ("/mailpit", "--smtp", "0.0.0.0"), ("0.0.0.0", "1025", BindScope.ALL)),  # a host, not a port
    ("mailhog", ("MailHog",), ("0.0.0.0", "1025", BindScope.ALL)),
    ("mailhog", ("MailHog", "--smtp-bind-addr=127.0.0.1:1025"), ("127.0.0.1", "1025", BindScope.LOOPBACK)),
    ("exim", ("exim", "-bd", "-q30m", "-oX", "25:587"), ("all", "25:587", BindScope.ALL)),
    ("exim", ("exim4", "-bd", "-oX", "<; 127.0.0.1.25 ; ::1.25"), ("<; 127.0.0.1.25 ; ::1.25", "", BindScope.LOOPBACK)),
]


@pytest.mark.parametrize(("mta_id", "argv", "want"), CASES)
def test_command_line_listen(mta_id, argv, want):
    found = get(mta_id).command_listen(argv, "`cmd`", "/entrypoint.sh", 3)
    assert found is not None
    assert (found.address, found.port, found.scope) == want
    assert found.software == mta_id and found.path == "/entrypoint.sh" and found.line == 3
    assert found.text.startswith(get(mta_id).name) and found.text.endswith("(`cmd`)")


@pytest.mark.parametrize(("mta_id", "argv"), [
    ("exim", ("exim", "-bd", "-q30m")),  # no -oX: the configuration decides
    ("exim", ("exim", "-bd", "-oX")),  # -oX without a value
    ("postfix", ("postfix", "start-fg")),  # configured in main.cf only
])
def test_command_line_says_nothing(mta_id, argv):
    assert get(mta_id).command_listen(argv, "`cmd`") is None

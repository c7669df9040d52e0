"""Listen-scope readers, one module per MTA, keyed by the software registry's id."""

from __future__ import annotations

from collections.abc import Callable

from smtpgate.static.config import dovecot, exim, nginx, opensmtpd, postfix, sendmail
from smtpgate.static.facts import ConfiguredListen
from smtpgate.static.fs import RootFS

Reader = Callable[[RootFS, list[str]], list[ConfiguredListen]]

READERS: dict[str, Reader] = {
    "postfix": postfix.read,
    "exim": exim.read,
    "sendmail": sendmail.read,
    "opensmtpd": opensmtpd.read,
    "dovecot": dovecot.read,
    "nginx": nginx.read,
}

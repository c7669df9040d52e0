"""Decide by protocol whether a listening port speaks SMTP.

Pure stdlib (asyncio + ssl), so the same code also runs as the in-target agent.

Per port, concurrently with every other port:

1. a *patient* clear-text connection waits for a greeting (delayed greetings
   of several seconds are normal: postscreen, greet_pause);
2. if nothing came after ``active_after`` seconds, two *active* connections
   start: a TLS handshake (implicit TLS, port 465 style) and a clear-text one
   that speaks first. A TLS handshake that succeeds leads to the SMTP dialogue
   inside TLS; an answer that is plainly not SMTP (``HTTP/1.1 400``, ``-ERR``)
   ends the wait early, so web and database ports cost a fraction of a second;
3. a 220 greeting is followed by EHLO (250 = SMTP), then LHLO (250 = LMTP),
   then HELO; a 220 greeting that refuses all three is FTP-like, not SMTP.

Everything read is bounded (bytes, lines, time); text kept for reports is
sanitised and truncated by the reporters.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

MAX_BYTES = 1 << 20  # per connection: a greeting flood is cut off here
MAX_LINES = 200
KEEP_LINE = 4096  # characters kept of any one line
HELO_NAME = "smtpgate.invalid"

# What a dialler returns: a connected, non-blocking socket to (host, port).
Dialler = Callable[[str, int], Awaitable[socket.socket]]
CONNECT_TIMEOUT = 3.0


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def connect(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Connect a fresh socket without blocking, within CONNECT_TIMEOUT; closed on failure."""
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), CONNECT_TIMEOUT)
    except BaseException:
        sock.close()
        raise
    return sock


async def direct_dial(host: str, port: int) -> socket.socket:
    """Dial from this process's own network namespace (VM port forwards, live
    hosts, the helper agent inside the target)."""
    return await connect(socket.socket(family_of(host), socket.SOCK_STREAM), host, port)


@dataclass(frozen=True)
class Verdict:
    """What one port speaks (protocol names as in smtpgate.model.Protocol)."""

    protocol: str  # smtp, lmtp, other, silent, unreachable
    tls: bool = False
    greeting: tuple[str, ...] = ()
    ehlo: tuple[str, ...] = ()
    detail: str = ""
    final: bool = True  # False: a hint from an active probe, used only when nothing better came

    @property
    def speaks_smtp(self) -> bool:
        return self.protocol in ("smtp", "lmtp")


class _Closed(Exception):
    pass


_REPLY_LINE = re.compile(rb"^(\d{3})([ -]|$)")


class Channel:
    """A byte stream over a socket, optionally through TLS (ssl.MemoryBIO, so
    the first bytes of a non-TLS answer can still be seen)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.tls: ssl.SSLObject | None = None
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()  # fresh ones for each handshake
        self.received = 0

    async def recv(self) -> bytes:
        if self.tls is None:
            return await self._raw_recv()
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                await self._flush()  # post-handshake messages, key updates
                data = await self._raw_recv()
                if not data:
                    return b""
                self._in.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def _raw_recv(self) -> bytes:
        data = await self.reader.read(65536)
        self.received += len(data)
        if self.received > MAX_BYTES:
            raise _Closed(f"cut off after {MAX_BYTES} bytes")
        return data

    async def send(self, data: bytes) -> None:
        if self.tls is not None:
            self.tls.write(data)
            data = self._out.read()
        self.writer.write(data)
        await self.writer.drain()

    async def _flush(self) -> None:
        if self._out.pending:
            self.writer.write(self._out.read())
            await self.writer.drain()

    async def start_tls(self, context: ssl.SSLContext) -> bytes:
        """Handshake; returns b"" on success, else the first clear-text bytes the
        peer sent instead (raising _Closed when it only closed or alerted)."""
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(self._in, self._out, server_side=False)
        first = True
        while True:
            try:
                tls.do_handshake()
                self.tls = tls
                await self._flush()  # the client's Finished message
                return b""
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                raise _Closed(f"TLS handshake failed: {exc.reason or exc}") from None
            await self._flush()
            data = await self._raw_recv()
            if not data:
                raise _Closed("closed during the TLS handshake")
            if first and data[0] not in (0x15, 0x16):  # not a TLS alert/handshake record
                return data
            first = False
            self._in.write(data)


def tls_context() -> ssl.SSLContext:
    """A client context that accepts any certificate and old protocols: we
    identify servers, we do not trust them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


class LineReader:
    """Reads CRLF/LF-terminated lines from a Channel with bounds."""

    def __init__(self, channel: Channel, initial: bytes = b""):
        self.channel, self.buf = channel, initial

    async def line(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > 2 * KEEP_LINE:  # keep only the head of a huge line
                self.buf = self.buf[:KEEP_LINE] + self.buf[-KEEP_LINE:]
                self.buf = self.buf.replace(b"\n", b"")
            data = await self.channel.recv()
            if not data:
                if self.buf:
                    rest, self.buf = self.buf, b""
                    return rest
                raise _Closed("closed by the peer")
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\n")
        return head.rstrip(b"\r")

    async def reply(self) -> tuple[str | None, tuple[str, ...]]:
        """One reply: (code, lines) for an SMTP-shaped reply, else (None, [first line])."""
        lines: list[str] = []
        while len(lines) < MAX_LINES:
            raw = await self.line()
            text = raw[:KEEP_LINE].decode("utf-8", "backslashreplace")[:KEEP_LINE]
            match = _REPLY_LINE.match(raw)
            if not match:
                return None, tuple(lines + [text])
            lines.append(text)
            if match.group(2) != b"-":
                return match.group(1).decode(), tuple(lines)
        raise _Closed(f"reply longer than {MAX_LINES} lines")


_NOT_SMTP = (
    (re.compile(rb"^SSH-"), "SSH"),
    (re.compile(rb"^HTTP/\d"), "HTTP"),
    (re.compile(rb"^\+OK"), "POP3"),
    (re.compile(rb"^\* (OK|PREAUTH|BYE)"), "IMAP"),
    (re.compile(rb"^-(ERR|NOAUTH|DENIED)"), "Redis"),
    (re.compile(rb"^(ERROR|CLIENT_ERROR)"), "memcached"),
    (re.compile(rb"^<\?xml|^<stream"), "XMPP"),
)


def name_other(data: bytes) -> str:
    """A short name for a non-SMTP answer, from its first bytes."""
    for pattern, label in _NOT_SMTP:
        if pattern.search(data[:64]):
            return label
    return "unrecognised"


def _smtp_shaped(data: bytes) -> bool:
    """Starts like an SMTP reply line ("220 ", "554-"), or is too short to tell."""
    return bool(_REPLY_LINE.match(data)) or (len(data) < 4 and data.isdigit())


async def _at_least(channel: Channel, data: bytes, size: int = 4) -> bytes:
    """Read on until ``size`` bytes or a line end arrived (a trickle is not a verdict)."""
    with contextlib.suppress(asyncio.TimeoutError, _Closed, OSError):
        while len(data) < size and b"\n" not in data:
            more = await asyncio.wait_for(channel.recv(), REPLY_TIMEOUT)
            if not more:
                break
            data += more
    return data


def _preview(data: bytes) -> str:
    return data[:80].decode("utf-8", "backslashreplace")


REPLY_TIMEOUT = 5.0  # for any one reply once the server has started talking


async def _reply(lines: LineReader, timeout: float = REPLY_TIMEOUT) -> tuple[str | None, tuple[str, ...]]:
    try:
        return await asyncio.wait_for(lines.reply(), timeout)
    except asyncio.TimeoutError:
        raise _Closed(f"no complete reply within {timeout:g} s (tarpit?)") from None


async def _command(channel: Channel, lines: LineReader, verb: str) -> tuple[str | None, tuple[str, ...]]:
    await channel.send(f"{verb} {HELO_NAME}\r\n".encode())
    return await _reply(lines)


_GREETING_CODES = (b"220", b"421", b"554")


async def dialogue(channel: Channel, initial: bytes, tls: bool, patience: float = REPLY_TIMEOUT) -> Verdict:
    """From the first bytes on: read the greeting and decide. A multi-line
    greeting may take ``patience`` to complete (postscreen sends ``220-`` at
    once and the final ``220`` after its greet wait)."""
    lines = LineReader(channel, initial)
    try:
        code, greeting = await _reply(lines, max(patience, REPLY_TIMEOUT))
    except _Closed as exc:
        if _REPLY_LINE.match(initial) and initial[:3] in _GREETING_CODES:
            return Verdict("silent", tls, detail=f"an SMTP-like greeting {_preview(initial)!r} began, but {exc}")
        return Verdict("other", tls, detail=f"started a greeting but {exc}")
    if code is None:
        first = greeting[0].encode("utf-8", "replace") if greeting else b""
        return Verdict("other", tls, greeting, detail=f"{name_other(first)} greeting: {_preview(first)!r}")
    if code not in ("220", "421", "554"):
        return Verdict("other", tls, greeting, detail=f"greets with {code}, not 220")
    for verb, proto in (("EHLO", "smtp"), ("LHLO", "lmtp"), ("HELO", "smtp")):
        try:
            answer, reply = await _command(channel, lines, verb)
        except (_Closed, OSError):
            break
        if answer == "250":
            with contextlib.suppress(Exception):
                await channel.send(b"QUIT\r\n")
            detail = f"{code} greeting, {verb} answered 250"
            return Verdict(proto, tls, greeting, reply, detail)
        if answer is None:
            break
    if code != "220" and re.search(r"\bE?SMTP\b", " ".join(greeting)):
        return Verdict("smtp", tls, greeting, detail=f"{code} greeting from an SMTP server refusing us")
    return Verdict("other", tls, greeting, detail=f"{code} greeting but EHLO, LHLO and HELO refused (FTP-like)")


async def _open(dial: Dialler, host: str, port: int) -> Channel:
    sock = await dial(host, port)
    try:
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_BYTES)
    except BaseException:
        sock.close()
        raise
    return Channel(reader, writer)


def _close(channel: Channel | None) -> None:
    if channel is not None:
        with contextlib.suppress(Exception):
            channel.writer.transport.abort()


async def _recv_within(channel: Channel, seconds: float) -> bytes | None:
    """The next bytes, b"" on close, None when nothing came in time."""
    try:
        return await asyncio.wait_for(channel.recv(), max(seconds, 0.01))
    except asyncio.TimeoutError:
        return None


async def patient(dial: Dialler, host: str, port: int, patience: float) -> Verdict:
    """Connect and wait, saying nothing, up to ``patience`` s for the server to speak."""
    started = time.monotonic()
    channel = await _open(dial, host, port)
    try:
        first = await _recv_within(channel, patience)
        if first is None:
            return Verdict("silent", detail=f"accepted but said nothing in {patience:g} s")
        if not first:
            return Verdict("silent", detail="closed the connection without a greeting")
        return await dialogue(channel, first, False, patience - (time.monotonic() - started))
    except (_Closed, OSError) as exc:
        return Verdict("silent", detail=str(exc) or type(exc).__name__)
    finally:
        _close(channel)


def _tls_record(data: bytes) -> bool:
    return bool(data) and data[0] in (0x15, 0x16)


async def _answer_to_ehlo(channel: Channel, tls: bool, patience: float) -> Verdict | None:
    """Speak first (EHLO) and classify the answer: non-SMTP bytes are final;
    an SMTP-shaped answer (a greeting sent late, or 554 for talking too early)
    is played out as a dialogue but kept as a hint, since the patient
    connection sees the real greeting; a silent close is a hint of non-SMTP
    (every SMTP server answers EHLO somehow); silence is None."""
    await channel.send(f"EHLO {HELO_NAME}\r\n".encode())
    first = await _recv_within(channel, patience)
    if first is None or _tls_record(first):
        return None
    if not first:
        return Verdict("other", tls, detail="closed the connection on EHLO without answering", final=False)
    first = await _at_least(channel, first)
    if _smtp_shaped(first):
        verdict = await dialogue(channel, first, tls, REPLY_TIMEOUT)
        return replace(verdict, final=False, detail=verdict.detail + " (after speaking first)")
    label = name_other(first)
    return Verdict("other", tls, detail=f"{label} answer to EHLO{' over TLS' if tls else ''}: {_preview(first)!r}")


async def try_tls(dial: Dialler, host: str, port: int, patience: float) -> Verdict | None:
    """Implicit TLS: handshake, then the SMTP dialogue inside (speaking first
    after a second of silence, so an HTTPS port is known at once). None when
    the port showed nothing conclusive."""
    channel = await _open(dial, host, port)
    try:
        try:
            plain = await asyncio.wait_for(channel.start_tls(tls_context()), patience)
        except asyncio.TimeoutError:
            return None
        if plain:
            plain = await _at_least(channel, plain)
            if _smtp_shaped(plain):
                return None  # a clear-text 3-digit speaker: the patient connection decides
            return Verdict("other", detail=f"{name_other(plain)} answer to a TLS handshake: {_preview(plain)!r}")
        first = await _recv_within(channel, min(1.0, patience))
        if first:
            return await dialogue(channel, first, True, patience)
        if first is None:
            verdict = await _answer_to_ehlo(channel, True, patience)
            if verdict is not None:
                return verdict
        return Verdict("other", True, detail="TLS service that sent no greeting", final=False)
    except (_Closed, OSError):
        return None
    finally:
        _close(channel)


async def speak_first(dial: Dialler, host: str, port: int, patience: float) -> Verdict | None:
    """Clear text, speaking first: a non-SMTP answer ends the wait early."""
    channel = await _open(dial, host, port)
    try:
        return await _answer_to_ehlo(channel, False, patience)
    except (_Closed, OSError):
        return None
    finally:
        _close(channel)


CONNECT_BUDGET = 3.0


async def probe_port(
    dial: Dialler, host: str, port: int, *, patience: float = 8.0, active_after: float = 0.25
) -> Verdict:
    """Classify one port. Never raises; returns within ``patience`` plus the
    time of a dialogue (connect + greeting + three commands) even against a tarpit."""
    budget = CONNECT_BUDGET + patience + 4 * REPLY_TIMEOUT
    try:
        return await asyncio.wait_for(_race(dial, host, port, patience, active_after), budget)
    except asyncio.TimeoutError:
        return Verdict("silent", detail=f"probe ran out of time after {budget:g} s (tarpit?)")


async def probe_listener(dial: Dialler, address: str, host: str, port: int, patience: float) -> tuple[Verdict, str]:
    """probe_port for a listener bound to ``address`` and dialled at ``host``;
    the verdict and the host finally dialled. A dual-stack ``[::]`` socket in
    a namespace with IPv6 switched off is still reached over IPv4."""
    verdict = await probe_port(dial, host, port, patience=patience)
    if verdict.protocol == "unreachable" and address == "::" and host == "::1":
        host = "127.0.0.1"
        verdict = await probe_port(dial, host, port, patience=patience)
    return verdict, host


_PREFERENCE = {"smtp": 0, "lmtp": 0, "other": 1, "silent": 2, "unreachable": 3}


async def _race(dial: Dialler, host: str, port: int, patience: float, active_after: float) -> Verdict:
    """The patient connection decides unless it stays silent; a final verdict
    of an active probe ends the race early; hints are used last."""
    waiting = asyncio.ensure_future(patient(dial, host, port, patience))
    pending: set[asyncio.Future] = {waiting}
    hints: list[Verdict] = []
    try:
        done, _ = await asyncio.wait(pending, timeout=active_after)
        if not done:
            pending.add(asyncio.ensure_future(try_tls(dial, host, port, patience)))
            pending.add(asyncio.ensure_future(speak_first(dial, host, port, patience)))
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                verdict = _result(task, active=task is not waiting)
                if verdict is None:
                    continue
                if task is waiting and verdict.protocol != "silent":
                    return verdict
                if task is not waiting and verdict.final:
                    return verdict
                hints.append(verdict)
        return min(hints, key=lambda v: _PREFERENCE.get(v.protocol, 9)) if hints else Verdict(
            "silent", detail="no answer")
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _result(task: asyncio.Future, active: bool) -> Verdict | None:
    """A task's verdict; an active probe's failure to connect is no verdict
    (the patient connection already got through)."""
    if task.cancelled():
        return None
    exc = task.exception()
    if isinstance(exc, OSError):
        if active:
            return None
        return Verdict("unreachable", detail=f"cannot connect: {exc.strerror or exc!r}")
    if exc is not None:
        return Verdict("silent", detail=f"probe failed: {type(exc).__name__}: {exc}")
    return task.result()

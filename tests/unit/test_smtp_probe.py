"""Protocol classification against replayed real transcripts and local servers.

Each transcript in data/transcripts was captured from a real server (see the
README there); a small asyncio server on 127.0.0.1 replays it byte for byte, in
clear or inside TLS, optionally after a delay, and the real probe decides.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from smtpgate.collect import smtp
from smtpgate.collect.smtp import direct_dial

DATA = Path(__file__).parent / "data" / "transcripts"


def load(name: str) -> dict:
    rec = json.loads((DATA / f"{name}.json").read_text())
    rec["greeting"] = base64.b64decode(rec["greeting"])
    rec["replies"] = {k: base64.b64decode(v) for k, v in rec["replies"].items()}
    return rec


@pytest.fixture(scope="module")
def tls_server_context(tmp_path_factory):
    """A throw-away self-signed certificate, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=replay",
         "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem")],
        check=True, capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    return ctx


async def _replay_session(reader, writer, rec, delay):
    await asyncio.sleep(delay)
    writer.write(rec["greeting"])
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            break
        verb = line.split(b" ")[0].strip().upper().decode("ascii", "replace")
        if verb == "QUIT":
            writer.write(b"221 bye\r\n")
            break
        writer.write(rec["replies"].get(verb, b"500 unknown\r\n"))
        await writer.drain()
    writer.close()


def probe_replay(rec: dict, *, delay: float = 0.0, tls_ctx=None, patience: float = 8.0) -> tuple[smtp.Verdict, float]:
    return _run(lambda r, w: _replay_session(r, w, rec, delay), patience, tls_ctx)


@pytest.mark.parametrize(
    ("name", "protocol", "tls", "first"),
    [
        ("postfix-all", "smtp", False, "220 postfix-all.example.test ESMTP Postfix (Debian/GNU)"),
        ("exim-all", "smtp", False, "220 exim-all.example.test ESMTP Exim 4.96"),
        ("aiosmtpd-2525", "smtp", False, "Python SMTP 1.4.3"),
        ("noshell-smtp", "smtp", False, "Python SMTP proxy version 0.3"),
        ("ftp-on-25", "other", False, "220 (vsFTPd 3.0.3)"),
    ],
)
def test_clear_text_transcripts(name, protocol, tls, first):
    verdict, _ = probe_replay(load(name))
    assert (verdict.protocol, verdict.tls) == (protocol, tls)
    assert first in verdict.greeting[0]
    if protocol == "smtp":
        assert verdict.ehlo and verdict.ehlo[-1].startswith("250 ")


@pytest.mark.parametrize(
    ("name", "software", "how"),
    [
        ("npm-smtp-server", "smtp-server", "ehlo"),  # generic greeting: the EHLO reply names it
        ("pip-smtp-server", "aiosmtpd", "greeting"),
        ("aiosmtpd-2525", "aiosmtpd", "greeting"),
        ("noshell-smtp", "python-smtpd", "greeting"),
    ],
)
def test_what_speaks_is_named_from_the_probe(name, software, how):
    from smtpgate.software import identify

    verdict, _ = probe_replay(load(name))
    got = identify("\n".join(verdict.greeting), verdict.ehlo)
    assert (verdict.protocol, got.id, got.how) == ("smtp", software, how)


def test_ftp_greeting_is_not_smtp_and_says_why():
    verdict, _ = probe_replay(load("ftp-on-25"))
    assert "FTP-like" in verdict.detail


def test_implicit_tls_postfix(tls_server_context):
    verdict, seconds = probe_replay(load("postfix-smtps"), tls_ctx=tls_server_context)
    assert (verdict.protocol, verdict.tls) == ("smtp", True)
    assert "ESMTP Postfix" in verdict.greeting[0]
    assert seconds < 3, "implicit TLS is found by the active probe, not after the full patience"


def test_delayed_greeting_is_awaited():
    verdict, seconds = probe_replay(load("postfix-all"), delay=3.0)
    assert verdict.protocol == "smtp"
    assert 3.0 <= seconds < 5.0


def test_delayed_greeting_beyond_patience_is_silent():
    verdict, seconds = probe_replay(load("postfix-all"), delay=4.0, patience=1.5)
    assert verdict.protocol == "silent"
    assert seconds < 4.0


def test_lmtp_server():
    rec = {
        "greeting": b"220 mail.example.test Dovecot (Debian) ready.\r\n",
        "replies": {"EHLO": b"500 5.5.1 Unknown command\r\n", "LHLO": b"250-mail.example.test\r\n250 PIPELINING\r\n"},
    }
    verdict, _ = probe_replay(rec)
    assert verdict.protocol == "lmtp"


def test_hostile_greeting_is_bounded_and_classified():
    rec = load("hostile-greeting")
    assert len(rec["greeting"]) > 200_000
    verdict, _ = probe_replay(rec)
    assert verdict.protocol == "smtp"
    assert all(len(line) <= smtp.KEEP_LINE + 1 for line in verdict.greeting)


def _serve(handler):
    """Run an asyncio server with ``handler`` and probe it; returns (verdict, seconds)."""

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        async with server:
            verdict = await smtp.probe_port(direct_dial, "127.0.0.1", port, patience=3.0)
        return verdict, time.monotonic() - started

    return asyncio.run(main())


def test_http_server_ends_early():
    async def http(reader, writer):
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    verdict, seconds = _serve(http)
    assert verdict.protocol == "other" and "HTTP" in verdict.detail
    assert seconds < 2.0


def test_ssh_banner_is_other():
    async def ssh(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        await writer.drain()
        await reader.read(100)
        writer.close()

    verdict, _ = _serve(ssh)
    assert verdict.protocol == "other" and "SSH" in verdict.detail


def test_tarpit_is_bounded():
    async def tarpit(reader, writer):
        await asyncio.sleep(30)

    verdict, seconds = _serve(tarpit)
    assert verdict.protocol == "silent"
    assert seconds < 3.0 + 1.5


def test_trickle_is_bounded():
    async def trickle(reader, writer):
        for byte in b"220 slow.example ESMTP\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    verdict, seconds = _serve(trickle)
    assert not verdict.speaks_smtp
    assert seconds < 3.0 + 3 * smtp.REPLY_TIMEOUT + 1


def test_flood_is_cut_off():
    async def flood(reader, writer):
        writer.write(b"220-")
        for _ in range(64):
            writer.write(b"A" * 65536)
            await writer.drain()

    verdict, seconds = _serve(flood)
    # an SMTP-like greeting that never ends cannot be judged: undecided, never "not SMTP"
    assert verdict.protocol == "silent" and "cut off" in verdict.detail


def test_refused_port_is_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connect is refused
        verdict = asyncio.run(smtp.probe_port(direct_dial, "127.0.0.1", port, patience=1.0))
    assert verdict.protocol == "unreachable"


class _BytesChannel:
    """A Channel stand-in that yields given chunks, then EOF."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    async def recv(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8))
def test_reply_parser_never_crashes_and_stays_bounded(chunks):
    async def run():
        reader = smtp.LineReader(_BytesChannel(chunks))
        try:
            return await reader.reply()
        except smtp._Closed:
            return None

    result = asyncio.run(run())
    if result is not None:
        code, lines = result
        assert code is None or (len(code) == 3 and code.isdigit())
        assert len(lines) <= smtp.MAX_LINES + 1
        assert all(len(line) <= smtp.KEEP_LINE for line in lines)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_name_other_never_crashes(data):
    assert isinstance(smtp.name_other(data), str)


def _run(handler, patience=3.0, tls_ctx=None) -> tuple[smtp.Verdict, float]:
    """Serve ``handler`` on loopback, probe it; the verdict and the seconds it took."""

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls_ctx)
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        async with server:
            verdict = await smtp.probe_port(direct_dial, "127.0.0.1", port, patience=patience)
        return verdict, time.monotonic() - started

    return asyncio.run(main())


def test_postscreen_style_greeting_completing_late_is_smtp():
    """220- at once, the final 220 after a 6 s greet wait (Postfix postscreen)."""

    async def postscreen(reader, writer):
        writer.write(b"220-mx.example.test ESMTP Postfix\r\n")
        await writer.drain()
        await asyncio.sleep(6)
        writer.write(b"220 mx.example.test ESMTP Postfix\r\n")
        await writer.drain()
        while line := await reader.readline():
            writer.write(b"221 bye\r\n" if line.startswith(b"QUIT") else b"250 mx.example.test\r\n")
            await writer.drain()

    verdict, _ = _run(postscreen, patience=8.0)
    assert verdict.protocol == "smtp"


def test_tls_alert_to_clear_text_is_not_a_verdict():
    """rustls/JSSE-style servers answer clear text with a TLS alert record:
    that must leave the decision to the TLS probe, not end the race."""
    alert = b"\x15\x03\x03\x00\x02\x02\x32"

    async def main():
        async def answers_alert(reader, writer):
            await reader.read(100)
            writer.write(alert)
            await writer.drain()

        server = await asyncio.start_server(answers_alert, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            dial = direct_dial
            return await smtp.speak_first(dial, "127.0.0.1", port, 2.0)

    assert asyncio.run(main()) is None


def test_server_that_greets_only_after_the_client_speaks():
    async def client_first(reader, writer):
        await reader.readline()
        writer.write(b"220 late.example ESMTP\r\n250 late.example\r\n")
        await writer.drain()
        while line := await reader.readline():
            writer.write(b"221 bye\r\n" if line.startswith(b"QUIT") else b"250 late.example\r\n")
            await writer.drain()

    verdict, _ = _run(client_first)
    assert verdict.protocol == "smtp"


def test_a_server_closing_on_ehlo_is_not_smtp():
    """Postgres-like: waits for its own handshake, closes on anything else."""

    async def closer(reader, writer):
        await reader.read(1)
        writer.close()

    verdict, _ = _run(closer)
    assert verdict.protocol == "other" and "closed the connection on EHLO" in verdict.detail


def test_https_port_is_known_quickly(tls_server_context):
    async def main():
        async def https(reader, writer):
            await reader.read(100)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(https, "127.0.0.1", 0, ssl=tls_server_context)
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        async with server:
            verdict = await smtp.probe_port(direct_dial, "127.0.0.1", port, patience=8.0)
        return verdict, time.monotonic() - started

    verdict, seconds = asyncio.run(main())
    assert verdict.protocol == "other" and verdict.tls
    assert seconds < 3.0


# -- an answer that is still the start of an SMTP reply when patience runs out is undecided (issue 16.1)

def _dribbler(first: bytes, rest: bytes, after: float = 30.0, ehlo: bytes = b"250 dribble.example\r\n"):
    """Sends ``first`` at once and ``rest`` only after ``after`` s (beyond any
    patience here); then answers every command with ``ehlo``, like the server
    smtplib talks to after 13 s in the issue."""

    async def handler(reader, writer):
        writer.write(first)
        await writer.drain()
        await asyncio.sleep(after)
        writer.write(rest)
        await writer.drain()
        while line := await reader.readline():
            writer.write(b"221 bye\r\n" if line.startswith(b"QUIT") else ehlo)
            await writer.drain()

    return handler


@pytest.fixture
def quick_replies(monkeypatch):
    monkeypatch.setattr(smtp, "REPLY_TIMEOUT", 1.0)


@pytest.mark.parametrize("first", [b"2", b"22", b"220", b"220 dribble.example ESMTP", b"220-dribble.example\r\n",
                                   b"220-a\r\n220-b\r\n22"])
def test_greeting_prefix_at_the_end_of_patience_is_undecided(quick_replies, first):
    verdict, seconds = _run(_dribbler(first, b"0 dribble.example ESMTP\r\n"), patience=1.5)
    assert verdict.protocol == "silent", verdict
    assert seconds < 1.5 + 3 * 1.0 + 2


def test_not_a_reply_prefix_is_still_other(quick_replies):
    verdict, _ = _run(_dribbler(b"hello, ", b"world\r\n"), patience=1.5)
    assert verdict.protocol == "other", verdict


def test_unfinished_answer_to_ehlo_is_undecided(quick_replies):
    async def slow_ehlo(reader, writer):
        writer.write(b"220 dribble.example ESMTP\r\n")
        await writer.drain()
        await reader.readline()
        writer.write(b"25")
        await writer.drain()
        await asyncio.sleep(30)

    verdict, _ = _run(slow_ehlo, patience=1.5)
    assert verdict.protocol == "silent" and "EHLO" in verdict.detail, verdict


def test_silent_after_ehlo_is_undecided_not_ftp_like(quick_replies):
    async def mute(reader, writer):
        writer.write(b"220 dribble.example ESMTP\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    verdict, _ = _run(mute, patience=1.5)
    assert verdict.protocol == "silent", verdict


def test_tls_silent_after_handshake_is_undecided(quick_replies, tls_server_context):
    """Implicit TLS that completes the handshake and then sends only part of a
    record (or nothing) before patience runs out."""

    async def tls_mute(reader, writer):
        await asyncio.sleep(30)

    verdict, _ = _run(tls_mute, patience=1.5, tls_ctx=tls_server_context)
    assert verdict.protocol == "silent" and verdict.tls, verdict


def test_tls_dribbled_greeting_is_undecided(quick_replies, tls_server_context):
    verdict, _ = _run(_dribbler(b"2", b"20 dribble.example ESMTP\r\n"), patience=1.5, tls_ctx=tls_server_context)
    assert verdict.protocol == "silent", verdict


def test_partial_tls_record_after_handshake_is_undecided(quick_replies, tls_server_context):
    """A raw TLS session whose server writes the first bytes of an application
    record and stalls: the probe cannot decrypt anything, so it cannot decide."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                tls = tls_server_context.wrap_socket(conn, server_side=True)
                held.append(tls)
                raw = socket.socket(fileno=socket.dup(tls.fileno()))  # under TLS, after the handshake
                held.append(raw)
                raw.send(b"\x17\x03\x03\x00\x40abcde")  # a record header announcing 64 bytes, then 5
            except (OSError, ssl.SSLError):
                held.append(conn)
        for s in held:
            s.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        verdict = asyncio.run(smtp.probe_port(direct_dial, "127.0.0.1", port, patience=1.5))
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert verdict.protocol == "silent", verdict


def test_server_answering_early_talkers_otherwise_cannot_end_the_race(quick_replies):
    """'2' to everyone; an HTTP error to a client that speaks before the greeting
    is complete (real SMTP clients wait): still undecided, never 'other'."""

    async def two_faced(reader, writer):
        writer.write(b"2")
        await writer.drain()
        try:
            await asyncio.wait_for(reader.read(100), 30)
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await writer.drain()
            writer.close()
        except asyncio.TimeoutError:
            pass

    verdict, _ = _run(two_faced, patience=1.5)
    assert verdict.protocol == "silent", verdict


def test_unfinished_multiline_answer_to_ehlo_is_undecided(quick_replies):
    async def half_ehlo(reader, writer):
        writer.write(b"220 dribble.example ESMTP\r\n")
        await writer.drain()
        await reader.readline()
        writer.write(b"250-dribble.example\r\n250-PIPELINING\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    verdict, _ = _run(half_ehlo, patience=1.5)
    assert verdict.protocol == "silent" and "EHLO" in verdict.detail, verdict

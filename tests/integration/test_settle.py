"""Settling on the real engine: the early way out when every thread is
parked, and what must still hold it (issue 7's speed without missed SMTP)."""

from __future__ import annotations

from tests.integration.test_trust import build, scan_json

# A web port at once, then an in-process 3 s timer (epoll_wait with a 3000 ms
# timeout, no sleep process to see), then SMTP on 2525. With a listener up and
# nothing busy, a plain one-second window would settle before the SMTP port.
LATE_TIMER = r'''
import asyncio

async def web(reader, writer):
    await reader.read(100)
    writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n"); await writer.drain(); writer.close()

async def smtp(reader, writer):
    writer.write(b"220 late.example.test ESMTP\r\n"); await writer.drain()
    while line := await reader.readline():
        verb = line[:4].upper()
        writer.write(b"250 late.example.test\r\n" if verb in (b"EHLO", b"HELO") else
                     b"221 bye\r\n" if verb == b"QUIT" else b"502 no\r\n")
        await writer.drain()
        if verb == b"QUIT":
            break
    writer.close()

async def main():
    await asyncio.start_server(web, "0.0.0.0", 8080)
    await asyncio.sleep(3)
    server = await asyncio.start_server(smtp, "0.0.0.0", 2525)
    await server.serve_forever()

asyncio.run(main())
'''


def test_a_listener_after_an_in_process_timer_is_not_missed(tmp_path, docker_client, images):
    tag = build(docker_client, "smtpgate-test/late-timer:latest", LATE_TIMER)
    code, report = scan_json(tmp_path, tag)
    target = report["targets"][0]
    assert code == 1, target
    smtp = [f for f in target["findings"] if f["state"] == "listening"]
    assert [f["ports"] for f in smtp] == [[2525]]
    assert not target["errors"]


def test_a_parked_server_settles_by_its_threads(tmp_path, images):
    code, report = scan_json(tmp_path, images["aiosmtpd-2525"])
    target = report["targets"][0]
    assert code == 1
    assert "every thread waiting for connections" in target["notes"][0]


def test_the_full_window_when_asked(tmp_path, images):
    code, report = scan_json(tmp_path, images["aiosmtpd-2525"], "--settle-fast", "0")
    target = report["targets"][0]
    assert code == 1
    assert target["notes"][0].startswith("settled after") and "every thread" not in target["notes"][0]


def test_a_long_sleep_before_the_server_is_noted_and_judged_statically(tmp_path, images):
    code, report = scan_json(tmp_path, images["delayed-mta"])
    target = report["targets"][0]
    assert code == 1  # the command runs postfix after the sleep: the static evidence fails it
    assert any("`sleep 60` outlasts the scan" in n for n in target["notes"])
    assert not any("still waiting on purpose" in n for n in target["notes"])

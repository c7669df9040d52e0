"""A mail sink built on aiosmtpd: accepts every message on all interfaces."""

import asyncio

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def main() -> None:
    controller = Controller(Sink(), hostname="0.0.0.0", port=8025)
    controller.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

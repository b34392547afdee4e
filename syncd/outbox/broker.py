"""The broker connection /readyz checks: a lazily (re)opened aio-pika connection of its own
(``BrokerProbe``, when this replica runs no relay) or the relay's live one (``RelayBroker``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aio_pika
from aiohttp import web

from syncd.keys import BROKER

if TYPE_CHECKING:
    from syncd.outbox.relay import Relay

log = logging.getLogger("syncd.ops")


class BrokerProbe:
    """A lazily (re)opened aio-pika connection; ``check`` never raises."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self._url = url
        self._timeout = timeout
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> aio_pika.abc.AbstractConnection:
        async with self._lock:
            if self.connection is None or self.connection.is_closed:
                self.connection = await aio_pika.connect(self._url, timeout=self._timeout)
            return self.connection

    async def check(self) -> str | None:
        """None when the broker answers, else a short reason (without credentials)."""
        try:
            conn = await self.connect()
            channel = await conn.channel()
            await channel.close()
        except Exception as exc:
            return type(exc).__name__
        return None

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


def broker_ctx(url: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broker = BrokerProbe(url)
        app[BROKER] = broker
        if await broker.check() is not None:
            log.warning("RabbitMQ not reachable at start; /readyz will say so")
        yield
        await broker.close()

    return ctx


class RelayBroker(BrokerProbe):
    """/readyz's broker check answers from the relay's live connection (leader or standby)."""

    def __init__(self, url: str, relay: Relay) -> None:
        super().__init__(url)
        self.relay = relay

    async def check(self) -> str | None:
        return None if self.relay.connected else (self.relay.last_error or "not connected")

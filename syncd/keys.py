"""Every ``web.AppKey`` of the syncd application, in one place: what ``create_app`` puts on the
app and what handlers and middlewares read from it.

Handlers never import state from ``syncd.app``; they read it from ``request.app[KEY]``. The
types are imported for type checking only, so any module can import these keys without an
import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from syncd.checkins.pusher import Pusher
    from syncd.dashboard.hub import DashboardHub
    from syncd.dashboard.seen import SeenGates
    from syncd.feed.notify import Notifier
    from syncd.feed.read import FeedReads
    from syncd.feed.stream import Broadcaster
    from syncd.lists.spool import UploadSlots
    from syncd.outbox.broker import BrokerProbe
    from syncd.outbox.relay import Relay
    from syncd.settings import SyncdSettings
    from syncd.vault import KeyVault
    from syncd.web.auth import PrincipalCache, Resolver
    from syncd.web.middleware import Metrics
    from syncd.web.operations import Operation
    from syncd.web.throttle import ClientAddresses, FailureLimiter

SETTINGS: web.AppKey[SyncdSettings] = web.AppKey("settings")
VAULT: web.AppKey[KeyVault] = web.AppKey("vault")
OPERATIONS: web.AppKey[tuple[Operation, ...]] = web.AppKey("operations")
POOL = web.AppKey("pool", asyncpg.Pool)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RESOLVERS: web.AppKey[dict[str, Resolver]] = web.AppKey("resolvers")
PRINCIPALS: web.AppKey[PrincipalCache] = web.AppKey("principals")
LIMITER: web.AppKey[FailureLimiter] = web.AppKey("failure_limiter")
ADDRESSES: web.AppKey[ClientAddresses] = web.AppKey("client_addresses")
NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier")
FEED_READS: web.AppKey[FeedReads] = web.AppKey("feed_reads")
BROADCASTER: web.AppKey[Broadcaster] = web.AppKey("broadcaster")
PUSHER: web.AppKey[Pusher] = web.AppKey("pusher")
UPLOADS: web.AppKey[UploadSlots] = web.AppKey("list_uploads")
BROKER: web.AppKey[BrokerProbe] = web.AppKey("broker")
RELAY: web.AppKey[Relay] = web.AppKey("relay")
DASHBOARD: web.AppKey[DashboardHub] = web.AppKey("dashboard")
SEEN: web.AppKey[SeenGates] = web.AppKey("seen_gates")

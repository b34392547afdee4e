"""The composition root: ``create_app(settings)`` wires middlewares, routes and resources.

Resources start in order (Postgres pool, the LISTEN connection, then the outbox relay and its
broker connection) and stop in reverse, as
``cleanup_ctx`` generators. The app holds no state between requests beyond pools, so any number
of replicas can run behind a load balancer.
"""

from __future__ import annotations

import importlib

from aiohttp import web

from shared.errors import ConfigError
from syncd import auth, db, logs, middleware, notify, ops, outbox, routing, server, throttle
from syncd.changes import FEED_READS, FeedReads
from syncd.checkins import PUSHER, Pusher
from syncd.lists.spool import UPLOADS, UploadSlots
from syncd.settings import SyncdSettings
from syncd.vault import KeyVault

SETTINGS = web.AppKey("settings", SyncdSettings)
VAULT = web.AppKey("vault", KeyVault)
API_MODULES = (
    "syncd.api.events",
    "syncd.api.tokens",
    "syncd.api.lists",
    "syncd.api.tickets",
    "syncd.api.issuance",
    "syncd.api.bundle",
    "syncd.api.gates",
    "syncd.api.gatesync",
    "syncd.api.stats",
    "syncd.api.docs",
)


def _vault(settings: SyncdSettings) -> KeyVault:
    if settings.master_key is None:
        raise ConfigError("SYNCD_MASTER_KEY is not set (make one with: syncd gen-master-key)")
    return KeyVault(settings.master_key.get_secret_value())


def create_app(settings: SyncdSettings) -> web.Application:
    """Build the syncd application; raises ``ConfigError`` for unusable settings."""
    for name in API_MODULES:
        importlib.import_module(name)
    app = web.Application(
        middlewares=[
            middleware.observe,
            middleware.errors,
            throttle.throttle,
            auth.auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    logs.install_filters()
    app.on_response_prepare.append(middleware.secure_headers)
    app[throttle.LIMITER] = throttle.FailureLimiter(
        settings.auth_fail_burst, settings.auth_fail_per_minute, settings.auth_fail_clients
    )
    app[throttle.ADDRESSES] = throttle.ClientAddresses(
        throttle.parse_networks(settings.trusted_proxies),
        throttle.parse_networks(settings.auth_fail_exempt),
    )
    app[SETTINGS] = settings
    app[VAULT] = _vault(settings)
    app[middleware.METRICS] = middleware.Metrics()
    app[auth.RESOLVERS] = auth.default_resolvers()
    app[PUSHER] = Pusher(settings.push_concurrency)
    app[FEED_READS] = FeedReads()
    app[UPLOADS] = UploadSlots(settings.uploads_per_org)
    app.cleanup_ctx.append(
        db.PoolCtx(
            settings.database_url.get_secret_value(),
            settings.pool_min,
            settings.pool_max,
            settings.check_schema,
            db.Timeouts(settings.db_statement_timeout, settings.db_idle_in_transaction_timeout),
        )
    )
    app.cleanup_ctx.append(notify.notifier_ctx(settings.database_url.get_secret_value()))
    amqp = settings.amqp_url.get_secret_value()
    if settings.relay_enabled:
        app.cleanup_ctx.append(outbox.relay_ctx(settings))
    else:
        app.cleanup_ctx.append(ops.broker_ctx(amqp))
    routing.add_routes(app)
    server.protect(app)
    return app

"""The composition root: ``create_app(settings)`` wires middlewares, routes and resources.

Routes are the handlers listed in ``ROUTES``, in the order the router matches them; each
handler's ``op`` declaration gives its path, role and documentation (``OPERATIONS``), so the
router and ``/openapi.json`` describe the same table. What handlers need (settings, the key
vault, pools, the pusher ...) is put on the app under the keys of ``syncd.keys``; no module
imports state from here.

Resources start in order (Postgres pool, the LISTEN connection, the feed broadcaster, the
automatic check-out timer, the gate sightings writer and the dashboard hub, then the outbox
relay and its broker connection) and stop in reverse, as ``cleanup_ctx`` generators. The app
holds no state between requests beyond pools, so any number of replicas can run behind a load
balancer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.errors import ConfigError
from syncd import db
from syncd.api import (
    bundle,
    dashboard,
    events,
    gate_admin,
    gate_sync,
    issuance,
    lists,
    stats,
    tickets,
    tokens,
    wallet,
)
from syncd.checkins.pusher import Pusher
from syncd.checkout.timer import checkout_ctx
from syncd.dashboard.seen import seen_ctx
from syncd.feed.notify import close_streams, notifier_ctx
from syncd.feed.read import FeedReads
from syncd.feed.stream import broadcaster_ctx
from syncd.keys import (
    ADDRESSES,
    FEED_READS,
    LIMITER,
    METRICS,
    PRINCIPALS,
    PUSHER,
    RESOLVERS,
    SETTINGS,
    UPLOADS,
    VAULT,
)
from syncd.keys import (
    OPERATIONS as OPERATIONS_KEY,
)
from syncd.lists.spool import UploadSlots
from syncd.outbox.broker import broker_ctx
from syncd.outbox.relay import relay_ctx
from syncd.settings import SyncdSettings
from syncd.vault import KeyVault
from syncd.web import auth, docs, health, logs, middleware, server, throttle
from syncd.web.operations import Handler, Operation, add_routes, operations_of

ROUTES: tuple[Handler, ...] = (
    health.healthz,
    health.readyz,
    health.metrics,
    events.create_event,
    events.list_events,
    events.get_event,
    events.update_event,
    events.list_keys,
    events.rotate_key,
    events.retire_key,
    tokens.whoami,
    tokens.list_tokens,
    tokens.create_token,
    tokens.revoke_token,
    lists.push_list,
    tickets.list_tickets,
    tickets.get_ticket,
    tickets.revoke_ticket,
    tickets.block_ticket,
    tickets.unblock_ticket,
    tickets.reissue_ticket,
    wallet.wallet_link,
    wallet.claim,
    wallet.current_pass,
    wallet.page,
    wallet.vendor_file,
    wallet.page_file,
    issuance.ticket_qr,
    issuance.export_csv,
    issuance.sheet,
    bundle.bundle,
    docs.openapi,
    gate_admin.create_gate,
    gate_admin.list_gates,
    gate_admin.new_gate_code,
    gate_admin.revoke_gate,
    gate_sync.enroll,
    gate_sync.push,
    gate_sync.changes_page,
    gate_sync.stream,
    gate_sync.presence,
    gate_sync.peers,
    gate_sync.drill,
    gate_sync.snapshot,
    stats.stats,
    stats.conflicts,
    dashboard.dashboard_figures,
    dashboard.dashboard_stream,
    dashboard.page,
    dashboard.vendor_file,
    dashboard.page_file,
)
OPERATIONS: tuple[Operation, ...] = tuple(o for h in ROUTES for o in operations_of(h))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the operations this app serves (``/openapi.json``)."""
    return docs.openapi_for(OPERATIONS)


def _vault(settings: SyncdSettings) -> KeyVault:
    if settings.master_key is None:
        raise ConfigError("SYNCD_MASTER_KEY is not set (make one with: syncd gen-master-key)")
    return KeyVault(settings.master_key.get_secret_value())


def create_app(settings: SyncdSettings) -> web.Application:
    """Build the syncd application; raises ``ConfigError`` for unusable settings."""
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
    app[LIMITER] = throttle.FailureLimiter(
        settings.auth_fail_burst, settings.auth_fail_per_minute, settings.auth_fail_clients
    )
    app[ADDRESSES] = throttle.ClientAddresses(
        throttle.parse_networks(settings.trusted_proxies),
        throttle.parse_networks(settings.auth_fail_exempt),
    )
    app[SETTINGS] = settings
    app[VAULT] = _vault(settings)
    app[OPERATIONS_KEY] = OPERATIONS
    app[METRICS] = middleware.Metrics()
    app[RESOLVERS] = auth.default_resolvers()
    app[PRINCIPALS] = auth.PrincipalCache(settings.auth_cache_seconds)
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
    app.cleanup_ctx.append(notifier_ctx(settings.database_url.get_secret_value()))
    app.cleanup_ctx.append(broadcaster_ctx)
    app.cleanup_ctx.append(checkout_ctx)
    app.cleanup_ctx.append(seen_ctx)
    app.cleanup_ctx.append(dashboard.dashboard_ctx)
    app.on_shutdown.append(close_streams)
    app.on_shutdown.append(dashboard.close_dashboards)
    amqp = settings.amqp_url.get_secret_value()
    if settings.relay_enabled:
        app.cleanup_ctx.append(relay_ctx(settings))
    else:
        app.cleanup_ctx.append(broker_ctx(amqp))
    add_routes(app, OPERATIONS)
    server.protect(app)
    return app

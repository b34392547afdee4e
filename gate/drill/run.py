"""``run_drill``: every check at once, each bounded, then the report to syncd.

A check that overruns GATE_DRILL_TIMEOUT is cancelled and red ("no answer in 5 s"); one that
raises is red with the error's name (and logged): the board always comes back, within about the
timeout plus the report's own bound, even with syncd, a peer, a camera or a hook hanging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from gate.camera.capture import Capture
from gate.drill import card, local, network
from gate.drill.board import Board, Item
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.syncstate import read_sync_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DrillContext:
    """What a drill runs against. ``live``: the running gate's camera (the kiosk's drill);
    ``camera``: drill the camera path (None: when GATE_CAMERA_SOURCE is set, or ``live`` is
    given); ``hooks``: run the admit/deny hooks."""

    settings: GateSettings
    store: Store
    live: Capture | None = None
    camera: bool | None = None
    hooks: bool = True

    @property
    def with_camera(self) -> bool:
        if self.camera is not None:
            return self.camera
        return self.live is not None or "source" in self.settings.camera.model_fields_set


async def run_drill(ctx: DrillContext) -> Board:
    """The board of one drill, reported to syncd when the gate is enrolled and it answered."""
    settings, store = ctx.settings, ctx.store
    started, ran_at = time.perf_counter(), time.time()
    state = await read_sync_state(store)
    link = network.Syncd.of(settings, state)
    limit = settings.drill.timeout
    syncd = asyncio.ensure_future(network.check_syncd(settings, state, link, ran_at))
    checks: dict[str, Awaitable[Item]] = {
        "list": local.check_list(settings, store, state, ran_at),
        "keys": local.check_keys(store),
        "camera": _camera(ctx, limit * 0.9),
        "camera_feed": _feed(ctx, limit * 0.9),
        "journal": local.check_journal(store, state, link.url is not None, ran_at),
        "disk": asyncio.to_thread(local.check_disk, settings),
        "peers": network.check_peers(settings, store),
        "hooks": _hooks(ctx),
    }
    items = list(await asyncio.gather(*(_bounded(n, c, limit) for n, c in checks.items())))
    probe = None
    try:
        syncd_item, clock_item, probe = await asyncio.wait_for(syncd, limit)
    except Exception as exc:
        syncd_item, clock_item = _failed("syncd", exc, limit), _failed("clock", exc, limit)
    items[4:4] = [syncd_item, clock_item]  # after the camera's, as the board lists them
    board = Board(settings.gate_name, items, ran_at, time.perf_counter() - started)
    await network.report(settings, link, board, probe)
    board.seconds = time.perf_counter() - started
    log.debug("drill", extra={"result": board.result, "seconds": round(board.seconds, 2)})
    return board


async def drill_gate(settings: GateSettings, *, camera: bool | None, hooks: bool) -> Board:
    """`gate drill`: open the database (beside a running gate: WAL), drill, close."""
    store = await Store.open(settings.db_path)
    try:
        return await run_drill(DrillContext(settings, store, camera=camera, hooks=hooks))
    finally:
        await store.close()


async def _camera(ctx: DrillContext, budget: float) -> Item:
    if not ctx.with_camera:
        return Item("camera", "skip", "no camera", "skipped: no camera is configured")
    return await card.check_camera(ctx.settings, ctx.store, budget)


async def _feed(ctx: DrillContext, budget: float) -> Item:
    if not ctx.with_camera:
        return Item("camera_feed", "skip", "no camera", "skipped: no camera is configured")
    return await card.check_feed(ctx.settings, ctx.live, budget)


async def _hooks(ctx: DrillContext) -> Item:
    if not ctx.hooks:
        return Item("hooks", "skip", "not run", "skipped: --no-hooks")
    return await local.check_hooks(ctx.settings)


async def _bounded(name: str, check: Awaitable[Item], limit: float) -> Item:
    try:
        return await asyncio.wait_for(check, limit)
    except Exception as exc:
        return _failed(name, exc, limit)


def _failed(name: str, exc: BaseException, limit: float) -> Item:
    if isinstance(exc, TimeoutError):
        return Item(name, "fail", f"no answer in {limit:g} s", "the check did not finish in time")
    log.exception("drill check %s failed", name, exc_info=exc)
    return Item(name, "fail", f"check failed: {type(exc).__name__}", str(exc))

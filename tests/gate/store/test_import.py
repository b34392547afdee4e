"""List bundles: only a trusted key may load one, and a refused one leaves the old list working."""

from __future__ import annotations

import gzip
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.bundle import BundleTicket
from shared.errors import BundleError, RejectReason
from shared.ticket import generate_private_key
from tessera_dev.sample_event import KEY, bundle_bytes, bundle_key, code, loaded_store, pipeline

NEW_LIST = [BundleTicket(1, 12, "valid", 1, "GA", "Ada"), BundleTicket(9, 99, "valid", 1, "GA")]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await loaded_store(tmp_path / "gate.sqlite3")
    yield store
    await store.close()


async def _old_list_still_works(store: Store) -> None:
    assert store.events[7].ticket_count == 6
    assert (await pipeline(store).process(code(5, 55))).admitted
    assert (await pipeline(store).process(code(9, 99))).reason is RejectReason.unknown_ticket


def _corrupt(data: bytes) -> bytes:
    text = gzip.decompress(data).replace(b'"GA"', b'"XX"', 1)
    return gzip.compress(text)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (bundle_bytes(NEW_LIST, signer=generate_private_key()), "untrusted key"),
        (bundle_bytes(NEW_LIST)[:-40], "gzip|truncated"),
        (_corrupt(bundle_bytes(NEW_LIST)), "does not match"),
        (b"not a bundle at all", "gzip"),
        (gzip.compress(b'{"format": "tessera-bundle/2"}\n'), "bad bundle header"),
    ],
    ids=["unsigned", "truncated", "tampered", "garbage", "bad-header"],
)
async def test_refused_bundle_leaves_the_old_list_intact(
    store: Store, data: bytes, error: str
) -> None:
    with pytest.raises(BundleError, match=error):
        await import_bundle(store, io.BytesIO(data))
    await _old_list_still_works(store)


async def test_bundle_with_a_duplicate_ticket_is_refused(store: Store) -> None:
    data = bundle_bytes([*NEW_LIST, NEW_LIST[0]])
    with pytest.raises(BundleError):
        await import_bundle(store, io.BytesIO(data))
    await _old_list_still_works(store)


async def test_gate_without_a_trusted_key_refuses_every_bundle(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "gate.sqlite3")
    try:
        with pytest.raises(BundleError, match="trusts no key"):
            await import_bundle(store, io.BytesIO(bundle_bytes()))
    finally:
        await store.close()


async def test_new_list_replaces_the_old_one_and_keeps_entry_state(store: Store) -> None:
    assert (await pipeline(store).process(code(1, 11))).admitted
    result = await import_bundle(store, io.BytesIO(bundle_bytes(NEW_LIST)))
    assert (result.tickets, result.signer) == (2, bundle_key(KEY).kid)
    assert (await pipeline(store).process(code(1, 11))).reason is RejectReason.reissued
    assert (await pipeline(store).process(code(1, 12))).reason is RejectReason.already_inside
    assert (await pipeline(store).process(code(5, 55))).reason is RejectReason.unknown_ticket
    assert (await pipeline(store).process(code(9, 99))).admitted


async def test_key_rotation_through_a_trusted_bundle(store: Store) -> None:
    new = generate_private_key()
    keys = [bundle_key(KEY, "retired"), bundle_key(new)]
    await import_bundle(store, io.BytesIO(bundle_bytes(NEW_LIST, keys=keys)))
    assert (await pipeline(store).process(code(9, 99, key=new))).admitted
    assert (await pipeline(store).process(code(1, 12))).reason is RejectReason.key_retired
    # the retired key may no longer sign lists; the key it introduced may
    with pytest.raises(BundleError, match="untrusted"):
        await import_bundle(store, io.BytesIO(bundle_bytes(NEW_LIST, keys=keys)))
    await import_bundle(store, io.BytesIO(bundle_bytes(NEW_LIST, keys=keys, signer=new)))


async def test_a_key_of_one_event_cannot_sign_another_events_list(store: Store) -> None:
    with pytest.raises(BundleError, match="untrusted"):
        await import_bundle(store, io.BytesIO(bundle_bytes(NEW_LIST, event_id=8)))

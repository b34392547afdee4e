"""A revoked gate enrolled again: its old journal is archived, its unsynced part carried over.

syncd never enrols a revoked gate again, so a revoked device comes back as a *new* gate: a new
gate id whose seqs start at 1. Its journal belongs to the old identity: syncd holds the rows it
acknowledged under the old id, and the old credential can deliver nothing more. At
``gate enroll`` (``carry_journal``, inside the enrolment's own transaction, so a crash leaves
the old state or the new one, never half of each):

1. Every journal row is copied to ``journal_archive`` under the old gate id: the device keeps
   the whole history of the identity it had.
2. Rows syncd acknowledged (``synced = 1``) leave the journal: sending them again as the new
   gate's would count them twice.
3. The others stay, renumbered 1..n in their order, ``scan_id`` and times unchanged: the worker
   pushes them as the new gate's first seqs, so nothing this gate decided is lost. An
   annulment or confirmation keeps pointing at its admission (``ref_seq`` renumbered too).
4. An annulment or confirmation of an admission syncd holds under the old id cannot travel
   (syncd would read its ``ref_seq`` as one of the new gate's): it stays in the archive only
   (``carried_to`` NULL) and `gate status` reports it. Nothing travels to a gate of another
   event (syncd files a push under the pushing gate's event): all of it stays archived.

One case stays uncertain: a push whose answer was lost just before the revocation. Those rows
are stored at syncd under the old id but not marked synced here, so they travel again; syncd
then holds the same ``scan_id`` under both ids, and an admission among them is flagged as a
conflict (docs/design.md section 3), never silently counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from gate.store.db import Store

_COLUMNS = "scan_id, event_id, ticket_id, direction, decision, reason, scanned_at, via, gate"
_ARCHIVE = f"""
INSERT INTO journal_archive (gate_id, seq, {_COLUMNS}, synced, ref_seq, carried_to, archived_at)
SELECT ?, seq, {_COLUMNS}, synced, ref_seq, NULL, ? FROM journal
"""
# Unsynced rows that can travel: anything but an annulment/confirmation of a synced admission.
_MAP = """
INSERT INTO temp.carry_map (old, new)
SELECT seq, row_number() OVER (ORDER BY seq) FROM journal j
WHERE ? AND synced = 0 AND (ref_seq IS NULL
                      OR EXISTS (SELECT 1 FROM journal r WHERE r.seq = j.ref_seq AND r.synced = 0))
"""
# Two steps through negative numbers: seq and the unique (ref_seq, decision) never collide.
_RENUMBER = (
    "UPDATE journal SET seq = -(SELECT new FROM temp.carry_map WHERE old = journal.seq),"
    " ref_seq = -(SELECT new FROM temp.carry_map WHERE old = journal.ref_seq)",
    "UPDATE journal SET seq = -seq, ref_seq = -ref_seq",
)


@dataclass(frozen=True, slots=True)
class Carried:
    from_gate: int
    archived: int  # rows of the old identity now in journal_archive
    carried: int  # unsynced rows renumbered into the journal: the new gate's seqs 1..carried
    kept: int  # unsynced rows that could not travel (step 4 of the module docstring)

    def as_dict(self) -> dict[str, int]:
        return {
            "from_gate": self.from_gate,
            "archived": self.archived,
            "carried": self.carried,
            "kept": self.kept,
        }


async def carry_journal(
    conn: aiosqlite.Connection, old_gate: int, now: float, *, same_event: bool = True
) -> Carried:
    """Archive the journal under ``old_gate`` and carry its unsynced rows (module docstring).

    ``same_event`` False (the new gate is another event's): nothing is carried, since syncd
    files a push under the pushing gate's event; every unsynced row is kept in the archive.
    Runs inside the caller's write transaction (``save_enrolment``)."""
    archived = (await conn.execute(_ARCHIVE, (old_gate, now))).rowcount
    await conn.execute("CREATE TEMP TABLE carry_map (old INTEGER PRIMARY KEY, new INTEGER)")
    try:
        carried = (await conn.execute(_MAP, (same_event,))).rowcount
        await conn.execute(
            "UPDATE journal_archive SET carried_to ="
            " (SELECT new FROM temp.carry_map WHERE old = journal_archive.seq) WHERE gate_id = ?",
            (old_gate,),
        )
        await conn.execute("DELETE FROM journal WHERE seq NOT IN (SELECT old FROM temp.carry_map)")
        for sql in _RENUMBER:
            await conn.execute(sql)
        kept = await _one(
            conn,
            "SELECT count(*) FROM journal_archive"
            " WHERE gate_id = ? AND synced = 0 AND carried_to IS NULL",
            old_gate,
        )
    finally:
        await conn.execute("DROP TABLE temp.carry_map")
    return Carried(old_gate, archived, carried, kept)


async def archive_summary(store: Store) -> list[dict[str, Any]]:
    """Per earlier identity: rows archived, carried to this gate, and kept back (never sent)."""
    rows = await store.conn.execute_fetchall(
        "SELECT gate_id, count(*), sum(carried_to IS NOT NULL),"
        " sum(synced = 0 AND carried_to IS NULL) FROM journal_archive"
        " GROUP BY gate_id ORDER BY gate_id"
    )
    return [Carried(g, a, c, k).as_dict() for g, a, c, k in rows]


async def _one(conn: aiosqlite.Connection, sql: str, *params: Any) -> int:
    rows = await conn.execute_fetchall(sql, params)
    return int(next(iter(rows))[0])

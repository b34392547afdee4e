-- Tessera gate store, version 9: wipe on revoke (gate/store/wipe.py, gate/store/carry.py).
-- When the holder data (names) was deleted after syncd revoked this gate (revoked_at). NULL with
-- revoked_at set: the wipe has not finished, and it runs again at the next start.
ALTER TABLE sync_state ADD COLUMN wiped_at REAL;

-- The journal of an identity this gate had before it was enrolled again as another gate (syncd
-- never enrols a revoked gate again: a new enrolment is a new gate id). Every row of the old
-- journal is kept here under the gate id it was made as. Rows syncd had not acknowledged moved
-- on into the journal under new seqs (carried_to) and are pushed as the new gate's; a row that
-- cannot move (an annulment or confirmation of an admission syncd holds under the old id) stays
-- here only, carried_to NULL, and `gate status` reports it.
CREATE TABLE journal_archive (
    gate_id     INTEGER NOT NULL,                   -- syncd's id of the identity it was made as
    seq         INTEGER NOT NULL,                   -- its seq under that identity
    scan_id     BLOB    NOT NULL,
    event_id    INTEGER,
    ticket_id   INTEGER,
    direction   TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    reason      TEXT,
    scanned_at  REAL    NOT NULL,
    via         TEXT    NOT NULL,
    gate        TEXT    NOT NULL,
    synced      INTEGER NOT NULL,                   -- 1: syncd acknowledged it under gate_id
    ref_seq     INTEGER,
    carried_to  INTEGER,                            -- its seq in the journal now; NULL: not carried
    archived_at REAL    NOT NULL,
    PRIMARY KEY (gate_id, seq)
) WITHOUT ROWID;

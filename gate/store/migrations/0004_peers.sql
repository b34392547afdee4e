-- Tessera gate store, version 4: gates that tell each other (docs/design.md section 6).
-- This gate's own certificate (its private key lives in DATA_DIR/peer.key, mode 0600).
ALTER TABLE sync_state ADD COLUMN peer_cert BLOB;

-- The event's other gates as far as this gate knows them: the newest certificate of each
-- (verified with the event key before it is written), where it answers, whether it is revoked.
CREATE TABLE peers (
    gate_id    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    cert       BLOB,
    issued_at  INTEGER NOT NULL DEFAULT 0,
    urls       TEXT    NOT NULL DEFAULT '[]',           -- JSON list of base URLs from syncd
    revoked    INTEGER NOT NULL DEFAULT 0
);

-- Per gate, the highest journal seq of its admissions applied here (from the peer itself or
-- from syncd's feed): the same admission arriving both ways moves the entry state once.
CREATE TABLE peer_marks (
    gate_id INTEGER PRIMARY KEY,
    seq     INTEGER NOT NULL
) WITHOUT ROWID;

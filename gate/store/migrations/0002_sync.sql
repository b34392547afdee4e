-- Tessera gate store, version 2: sync with syncd (docs/design.md section 3, shared/protocol.py).
-- One row: where this gate syncs to and how far it got. The credential itself lives in a file
-- with mode 0600 (GATE_CREDENTIAL_FILE), never in the database.
CREATE TABLE sync_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    server_url      TEXT,                               -- from `gate enroll`
    credential_file TEXT,                               -- where the credential was written
    gate_id         INTEGER,                            -- syncd's id of this gate
    gate_name       TEXT,                               -- syncd's name of this gate
    event_id        INTEGER,                            -- the event this gate is enrolled in
    enrolled_at     REAL,
    cursor          TEXT    NOT NULL DEFAULT '',        -- change-feed position ('' = start)
    acked_seq       INTEGER NOT NULL DEFAULT 0,         -- highest contiguous seq syncd holds
    skew            REAL    NOT NULL DEFAULT 0,         -- syncd clock - gate clock, seconds
    clock_warning   TEXT,
    last_push_at    REAL,
    last_pull_at    REAL,
    snapshot_at     REAL,
    last_error      TEXT,                               -- why the last sync call failed
    revoked_at      REAL                                -- syncd refused the credential
);
INSERT INTO sync_state (id) VALUES (1);

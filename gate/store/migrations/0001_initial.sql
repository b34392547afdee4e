-- Tessera gate store, version 1.
-- Integer keys and WITHOUT ROWID tables: 1,000,000 tickets per event stay around 30 MB.

CREATE TABLE events (
    event_id         INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    timezone         TEXT    NOT NULL DEFAULT 'UTC',
    reentry          TEXT    NOT NULL DEFAULT 'after_exit'
                     CHECK (reentry IN ('never', 'after_exit', 'always')),
    zones            TEXT    NOT NULL DEFAULT '{}',   -- JSON: bit index (str) -> zone name
    starts_at        INTEGER NOT NULL DEFAULT 0,
    ends_at          INTEGER NOT NULL DEFAULT 0,
    ticket_count     INTEGER NOT NULL DEFAULT 0,
    list_issued_at   INTEGER NOT NULL DEFAULT 0,      -- when syncd built the bundle
    list_imported_at REAL    NOT NULL DEFAULT 0,      -- when this gate loaded it
    list_cursor      TEXT,                            -- change-feed position of the bundle
    list_signer      BLOB                             -- kid that signed the loaded bundle
);

-- Ticket-signing keys (event_id set) and keys trusted to sign list bundles (trusted = 1).
CREATE TABLE keys (
    kid        BLOB    PRIMARY KEY,                   -- 4 bytes, SHA-256(public key)[:4]
    public_key BLOB    NOT NULL,                      -- raw 32 bytes
    event_id   INTEGER,                               -- NULL: pinned, no list loaded yet
    status     TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    trusted    INTEGER NOT NULL DEFAULT 0,            -- 1: may sign list bundles
    pinned_at  REAL                                   -- set by `gate trust`
) WITHOUT ROWID;

CREATE TABLE categories (
    category_id INTEGER PRIMARY KEY,
    label       TEXT NOT NULL UNIQUE
);

-- status: 0 valid, 1 revoked, 2 blocked. zone: uint16 bit mask.
CREATE TABLE tickets (
    event_id    INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    nonce       INTEGER NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    zone        INTEGER NOT NULL,
    category_id INTEGER NOT NULL DEFAULT 0,
    holder      TEXT,
    PRIMARY KEY (event_id, ticket_id)
) WITHOUT ROWID;

-- Who is inside: from this gate's admits now, from other gates' check-ins once sync applies them.
CREATE TABLE entry_state (
    event_id      INTEGER NOT NULL,
    ticket_id     INTEGER NOT NULL,
    inside        INTEGER NOT NULL,
    last_in_at    REAL,
    last_in_gate  TEXT,
    last_out_at   REAL,
    last_out_gate TEXT,
    entries       INTEGER NOT NULL DEFAULT 0,
    updated_at    REAL    NOT NULL,                   -- gate clock of the change it reflects
    PRIMARY KEY (event_id, ticket_id)
) WITHOUT ROWID;

-- This gate's own scans. seq is gap-free (rows are never deleted), scan_id is random.
CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY,
    scan_id    BLOB    NOT NULL,                      -- 16 random bytes
    event_id   INTEGER,
    ticket_id  INTEGER,
    direction  TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    decision   TEXT    NOT NULL CHECK (decision IN ('admit', 'deny')),
    reason     TEXT,
    scanned_at REAL    NOT NULL,                      -- gate wall clock, Unix seconds
    via        TEXT    NOT NULL,                      -- scanner, camera, manual ...
    gate       TEXT    NOT NULL,                      -- this gate's name at the time
    synced     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX journal_unsynced ON journal (seq) WHERE synced = 0;

-- The journal is this gate's truth and the entry state follows it, in seq order, inside the
-- statement that appends the scan: one statement, one transaction, one fsync per scan.
CREATE TRIGGER journal_admit_in AFTER INSERT ON journal
WHEN NEW.decision = 'admit' AND NEW.direction = 'in' AND NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO entry_state (event_id, ticket_id, inside, last_in_at, last_in_gate, entries,
                             updated_at)
    VALUES (NEW.event_id, NEW.ticket_id, 1, NEW.scanned_at, NEW.gate, 1, NEW.scanned_at)
    ON CONFLICT (event_id, ticket_id) DO UPDATE SET
        inside = 1, last_in_at = excluded.last_in_at, last_in_gate = excluded.last_in_gate,
        entries = entries + 1, updated_at = excluded.updated_at;
END;

CREATE TRIGGER journal_admit_out AFTER INSERT ON journal
WHEN NEW.decision = 'admit' AND NEW.direction = 'out' AND NEW.ticket_id IS NOT NULL
BEGIN
    INSERT INTO entry_state (event_id, ticket_id, inside, last_out_at, last_out_gate, updated_at)
    VALUES (NEW.event_id, NEW.ticket_id, 0, NEW.scanned_at, NEW.gate, NEW.scanned_at)
    ON CONFLICT (event_id, ticket_id) DO UPDATE SET
        inside = 0, last_out_at = excluded.last_out_at, last_out_gate = excluded.last_out_gate,
        updated_at = excluded.updated_at;
END;

-- Tessera gate store, version 6: door operations (docs/design.md section 8).
-- The journal takes three more kinds of row, each an entry of its own (a row is never edited):
--   annul    staff (or an unconfirmed passage) undo the admission ref_seq: the entry state goes
--            back to what it was before it;
--   passed   the turnstile or light beam confirmed the admission ref_seq;
--   tailgate a passage with no admission waiting for it (ticket_id NULL).
-- SQLite cannot change a CHECK constraint, so the journal is copied into a new table.
CREATE TABLE journal_v6 (
    seq        INTEGER PRIMARY KEY,
    scan_id    BLOB    NOT NULL,
    event_id   INTEGER,
    ticket_id  INTEGER,
    direction  TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    decision   TEXT    NOT NULL
               CHECK (decision IN ('admit', 'deny', 'annul', 'passed', 'tailgate')),
    reason     TEXT,
    scanned_at REAL    NOT NULL,
    via        TEXT    NOT NULL,
    gate       TEXT    NOT NULL,
    synced     INTEGER NOT NULL DEFAULT 0,
    ref_seq    INTEGER                                -- the admission an annul/passed row is about
);
INSERT INTO journal_v6 (seq, scan_id, event_id, ticket_id, direction, decision, reason,
                        scanned_at, via, gate, synced)
SELECT seq, scan_id, event_id, ticket_id, direction, decision, reason, scanned_at, via, gate,
       synced FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v6 RENAME TO journal;
CREATE INDEX journal_unsynced ON journal (seq) WHERE synced = 0;
-- An admission has at most one annulment and one confirmation.
CREATE UNIQUE INDEX journal_ref ON journal (ref_seq, decision) WHERE ref_seq IS NOT NULL;

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

-- An annulled entry: outside again, one entry fewer (never entered, when it was the first);
-- an annulled exit: inside again. The code checks that the admission is still the ticket's
-- latest movement before it writes the row.
CREATE TRIGGER journal_annul AFTER INSERT ON journal
WHEN NEW.decision = 'annul' AND NEW.ticket_id IS NOT NULL
BEGIN
    UPDATE entry_state SET
        inside = CASE WHEN NEW.direction = 'in' THEN 0 ELSE 1 END,
        entries = CASE WHEN NEW.direction = 'in' THEN max(entries - 1, 0) ELSE entries END,
        last_in_at = CASE WHEN NEW.direction = 'in' AND entries <= 1 THEN NULL
                          ELSE last_in_at END,
        last_in_gate = CASE WHEN NEW.direction = 'in' AND entries <= 1 THEN NULL
                            ELSE last_in_gate END,
        updated_at = max(updated_at, NEW.scanned_at)
    WHERE event_id = NEW.event_id AND ticket_id = NEW.ticket_id;
END;

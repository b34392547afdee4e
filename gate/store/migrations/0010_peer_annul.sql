-- Tessera gate store, version 10: annulments over the peer mesh (docs/design.md section 6).
-- Every admission a peer delivered, as it was applied here: an annulment the same peer sends
-- later is matched to it (same gate, same seq, same ticket and direction) and undoes it only
-- while the entry state still shows exactly that movement (its gate name and its local time).
-- Admissions that came through syncd's feed are not kept here (gate.store.peers says how their
-- annulments are matched).
CREATE TABLE peer_admissions (
    gate_id   INTEGER NOT NULL,                      -- the peer's gate id (its certificate)
    seq       INTEGER NOT NULL,                      -- the admission's seq in the peer's journal
    event_id  INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    direction TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    at        REAL    NOT NULL,                      -- on this gate's clock, as written then
    gate      TEXT    NOT NULL,                      -- the gate name written then
    annul_seq INTEGER,                               -- the peer's annulment of it, once received
    PRIMARY KEY (gate_id, seq)
) WITHOUT ROWID;

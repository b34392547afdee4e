-- The organisers' live dashboard (issue 19, syncd/api/dashboard.py, syncd/dashboard/).

-- Capacity: the most people that may be inside a zone at once, keyed by zone name, or "*" for
-- the whole event; a zone without a key has none. The API checks the keys against the zones.
ALTER TABLE events
    ADD COLUMN capacity jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(capacity) = 'object' AND pg_column_size(capacity) <= 4096);

-- When each gate was last seen (a push, a long-poll, an open feed stream) and the backlog it
-- last reported (journal rows it still held unsynced besides the batch it pushed). Every
-- replica writes its sightings in one statement every SYNCD_GATE_SEEN_INTERVAL seconds
-- (syncd/dashboard/seen.py), never one per request. UNLOGGED: after a crash the table is empty
-- and refills within one interval; no WAL for what is only "recently seen".
CREATE UNLOGGED TABLE gate_seen (
    gate_id    bigint PRIMARY KEY,
    seen_at    timestamptz NOT NULL,
    backlog    bigint CHECK (backlog >= 0),
    backlog_at timestamptz
);

-- The dashboard's wake-up: one notification per event per transaction that changed its figures
-- (any check-in row: admissions, denials, door operations; a gate created, enrolled, revoked
-- or drilled; a new capacity).
-- The feed's own tessera_feed carries only what gates need, so a denial must not wake them.
-- Postgres folds equal payloads of one transaction into one notification.
CREATE FUNCTION tessera_figures_checkins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_figures', e.event_id::text)
    FROM (SELECT DISTINCT event_id FROM new_rows) e;
    RETURN NULL;
END
$$;

CREATE TRIGGER checkins_figures AFTER INSERT ON checkins
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_figures_checkins();

CREATE FUNCTION tessera_figures_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_figures', NEW.event_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER gates_figures
    AFTER INSERT OR UPDATE OF last_drill_at, enrolled_at, revoked_at, zone, name ON gates
    FOR EACH ROW EXECUTE FUNCTION tessera_figures_row();

CREATE TRIGGER events_figures AFTER UPDATE OF capacity, zones ON events
    FOR EACH ROW EXECUTE FUNCTION tessera_figures_row();

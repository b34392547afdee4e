-- Gates, their check-ins, the transactional outbox, and feed notifications (issue 6).

CREATE TABLE gates (
    gate_id          bigserial PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES events ON DELETE CASCADE,
    org_id           bigint NOT NULL REFERENCES orgs ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    zone             text NOT NULL DEFAULT '',         -- zone name this gate stands at ('' = any)
    device           text NOT NULL DEFAULT '',
    code_hash        bytea UNIQUE,                     -- SHA-256 of the one-time enrolment code
    code_expires_at  timestamptz,
    credential_hash  bytea UNIQUE,                     -- SHA-256 of the tsg_ credential
    enrolled_at      timestamptz,
    revoked_at       timestamptz,
    acked_seq        bigint NOT NULL DEFAULT 0,        -- highest contiguous seq held
    skew             double precision,                 -- server - gate clock at the last push
    last_push_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gates_event ON gates (event_id);

-- Every check-in a gate pushed, exactly once (gate, seq).
CREATE TABLE checkins (
    gate_id     bigint NOT NULL REFERENCES gates ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq >= 1),
    event_id    bigint NOT NULL,
    scan_id     bytea NOT NULL CHECK (length(scan_id) = 16),
    ticket_id   bigint,
    direction   text NOT NULL CHECK (direction IN ('in', 'out')),
    outcome     text NOT NULL CHECK (outcome IN ('admit', 'deny')),
    reason      text,
    via         text NOT NULL DEFAULT 'scanner',
    scanned_at  double precision NOT NULL,      -- gate clock, Unix seconds
    at          double precision NOT NULL,      -- corrected to syncd's clock (scanned_at + skew)
    skew        double precision NOT NULL,
    conflict    boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gate_id, seq)
);
CREATE INDEX checkins_admitted ON checkins (event_id, ticket_id, at) WHERE outcome = 'admit';
CREATE INDEX checkins_event_at ON checkins (event_id, at);

-- Check-ins in the change feed point at their row.
ALTER TABLE change_feed ADD COLUMN gate_id bigint, ADD COLUMN gate_seq bigint;

-- The transactional outbox: written in the writer's transaction, published by the relay.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    routing_key  text NOT NULL,
    event_id     bigint NOT NULL,
    body         jsonb NOT NULL,
    tx           xid8,                 -- set for one-per-transaction rows (tickets.updated)
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at      timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE UNIQUE INDEX outbox_one_per_tx ON outbox (tx, event_id) WHERE tx IS NOT NULL;

-- Wake the relay when rows arrive (one notification per transaction).
CREATE FUNCTION tessera_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_outbox_notify();

-- Every feed advance wakes long-polling gates of that event (delivered at commit, deduplicated
-- per transaction). Advances by anything but check-ins (list pushes, ticket actions, keys) also
-- record one tickets.updated outbox row per transaction and event, covering the seq range.
CREATE FUNCTION tessera_feed_advanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_feed', NEW.event_id::text);
    IF coalesce(current_setting('tessera.feed_writer', true), '') <> 'checkins' THEN
        INSERT INTO outbox (routing_key, event_id, tx, body)
        VALUES ('tickets.updated', NEW.event_id, pg_current_xact_id(),
                jsonb_build_object('type', 'tickets.updated', 'event_id', NEW.event_id,
                                   'from_seq', OLD.change_seq + 1, 'to_seq', NEW.change_seq))
        ON CONFLICT (tx, event_id) WHERE tx IS NOT NULL DO UPDATE
            SET body = outbox.body || jsonb_build_object('to_seq', NEW.change_seq);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_feed_advanced AFTER UPDATE OF change_seq ON events
    FOR EACH ROW WHEN (NEW.change_seq > OLD.change_seq)
    EXECUTE FUNCTION tessera_feed_advanced();

-- Holder-bound rotating codes (issue 17, docs/design.md section 5).
-- An event may require them (gates then refuse static T1 codes); the period is how many seconds
-- a code lives. A ticket a holder claimed carries the holder's device key: its passes bind it.
ALTER TABLE events
    ADD COLUMN rotating        boolean NOT NULL DEFAULT false,
    ADD COLUMN rotation_period integer NOT NULL DEFAULT 10 CHECK (rotation_period BETWEEN 2 AND 300);
ALTER TABLE tickets ADD COLUMN holder_key bytea CHECK (length(holder_key) = 32);

-- One live claim link per ticket: making a new one replaces the token (the old link stops
-- working). Only the SHA-256 of the token is kept. ``claims`` counts claims through this link
-- (bounded, so a leaked link cannot hop from phone to phone), ``claims_total`` all of them.
CREATE TABLE wallet_links (
    ticket_id     bigint PRIMARY KEY REFERENCES tickets ON DELETE CASCADE,
    event_id      bigint NOT NULL REFERENCES events ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    claims        integer NOT NULL DEFAULT 0,
    claims_total  integer NOT NULL DEFAULT 0,
    claimed_at    timestamptz,
    device        text NOT NULL DEFAULT '' CHECK (length(device) <= 200)
);
CREATE INDEX wallet_links_event ON wallet_links (event_id);

-- An event's settings changing (rotation, re-entry, zones ...) advances the feed so gates learn
-- it without a snapshot; it is no list change, so no tickets.updated message.
CREATE OR REPLACE FUNCTION tessera_feed_advanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_feed', NEW.event_id::text);
    IF coalesce(current_setting('tessera.feed_writer', true), '') NOT IN ('checkins', 'gates', 'event') THEN
        INSERT INTO outbox (routing_key, event_id, tx, body)
        VALUES ('tickets.updated', NEW.event_id, pg_current_xact_id(),
                jsonb_build_object('type', 'tickets.updated', 'event_id', NEW.event_id,
                                   'from_seq', OLD.change_seq + 1, 'to_seq', NEW.change_seq)::text)
        ON CONFLICT (tx, event_id) WHERE tx IS NOT NULL DO UPDATE
            SET body = (outbox.body::jsonb || jsonb_build_object('to_seq', NEW.change_seq))::text;
    END IF;
    RETURN NULL;
END $$;

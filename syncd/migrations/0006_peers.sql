-- Gates that tell each other (issue 16, docs/design.md section 6): each gate's own peer key,
-- syncd's certificate of it (signed with the event key), and where it answers on the venue LAN.
ALTER TABLE gates
    ADD COLUMN peer_key  bytea CHECK (length(peer_key) = 32),
    ADD COLUMN peer_cert bytea CHECK (length(peer_cert) <= 300),
    ADD COLUMN peer_urls text[] NOT NULL DEFAULT '{}';

-- A gate enrolling or being revoked advances the feed (peers learn it there) but is no list
-- change: it wakes the event's gates without a tickets.updated message.
CREATE OR REPLACE FUNCTION tessera_feed_advanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_feed', NEW.event_id::text);
    IF coalesce(current_setting('tessera.feed_writer', true), '') NOT IN ('checkins', 'gates') THEN
        INSERT INTO outbox (routing_key, event_id, tx, body)
        VALUES ('tickets.updated', NEW.event_id, pg_current_xact_id(),
                jsonb_build_object('type', 'tickets.updated', 'event_id', NEW.event_id,
                                   'from_seq', OLD.change_seq + 1, 'to_seq', NEW.change_seq)::text)
        ON CONFLICT (tx, event_id) WHERE tx IS NOT NULL DO UPDATE
            SET body = (outbox.body::jsonb || jsonb_build_object('to_seq', NEW.change_seq))::text;
    END IF;
    RETURN NULL;
END $$;

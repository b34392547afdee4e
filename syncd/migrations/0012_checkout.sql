-- Automatic check-out (issue 18, shared/checkout.py): at an event's checkout_time, local time
-- in its zone, every ticket counts as outside. Nothing is written for it: presence, figures
-- and conflicts leave out admissions before the boundary (the latest check-out instant at or
-- before now). checkout_since is when the check-out time or the time zone was last set: a
-- boundary before it is never announced (turning the setting on at 15:00 announces no
-- check-out of 04:00 that morning).
ALTER TABLE events
    ADD COLUMN checkout_time time CHECK (extract(second FROM checkout_time) = 0),
    ADD COLUMN checkout_since timestamptz NOT NULL DEFAULT now();

-- Each announced check-out, once per event and boundary (the key makes it once, however many
-- replicas and workers try at the same moment); its checkout.automatic message is written to
-- the outbox in the same transaction. inside: tickets inside just before the boundary.
CREATE TABLE checkouts (
    event_id    bigint NOT NULL REFERENCES events ON DELETE CASCADE,
    boundary    double precision NOT NULL,        -- Unix seconds of the check-out instant
    inside      bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, boundary)
);

-- The boundary of the moment p_at (Unix seconds) for check-out time p_time in zone p_tz: the
-- latest instant at or before p_at whose local time is p_time; NULL when p_time is NULL. The
-- SQL twin of shared.checkout.latest_checkout, for rules that need it per row (conflicts in
-- tessera_store_push): a skipped or repeated wall time is read as AT TIME ZONE reads it, at the
-- later of its two candidate instants, as the Python does.
CREATE FUNCTION tessera_checkout_boundary(p_at float8, p_tz text, p_time time)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT max(c.at) FROM generate_series(0, 2) AS d(n)
    CROSS JOIN LATERAL (
        SELECT extract(epoch FROM
            (((to_timestamp(p_at) AT TIME ZONE p_tz)::date - d.n) + p_time) AT TIME ZONE p_tz
        )::float8 AS at) c
    WHERE c.at <= p_at
$$;

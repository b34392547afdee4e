-- Repeatable: tessera_store_push, the server side of one gate push (syncd/checkins/pusher.py
-- describes its steps). `syncd migrate` runs this file again, after the versioned migrations,
-- whenever its checksum differs from the one recorded in schema_repeatables, so a change to
-- the function is an edit of this file, never a copy of it in a new migration. It must stay
-- safe to run any number of times (CREATE OR REPLACE; a change of its OUT columns needs a
-- DROP FUNCTION first). History: created in migrations/0004_push.sql, its advisory lock key
-- made per event in 0005_push_hardening.sql; those files stay as they were applied. Door
-- operations (0009_door_ops.sql) added p_ref and step 2b. ("db.py's" lock below is now
-- syncd/migrate.py's _LOCK_ID.)
--
-- One call is one round trip and one short transaction. A seq already stored with another
-- scan_id raises SQLSTATE 'TS409' with the seq as DETAIL, and nothing of the batch is kept.

CREATE OR REPLACE FUNCTION tessera_store_push(
    p_gate bigint, p_skew float8, p_seq bigint[], p_scan bytea[], p_ticket bigint[],
    p_direction text[], p_outcome text[], p_reason text[], p_via text[], p_scanned float8[],
    p_ref bigint[], p_feed boolean,
    OUT acked bigint, OUT stored bigint, OUT conflicts bigint, OUT event_id bigint,
    OUT adm_seqs bigint[], OUT adm_tickets bigint[], OUT adm_kinds text[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    g record;
    r record;
    a record;
    clash bigint;
BEGIN
    -- 1. Lock the gate row (pushes of one gate queue up) and record its skew.
    UPDATE gates AS gt SET skew = p_skew, last_push_at = now() FROM events e
    WHERE gt.gate_id = p_gate AND e.event_id = gt.event_id
    RETURNING gt.event_id, gt.name, e.reentry, e.timezone, e.checkout_time INTO g;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'gate % does not exist', p_gate;
    END IF;
    PERFORM set_config('tessera.feed_writer', 'checkins', true);

    -- 2. The batch, idempotent on (gate, seq); every new row gets its outbox message.
    WITH u AS (
        SELECT * FROM unnest(p_seq, p_scan, p_ticket, p_direction, p_outcome, p_reason, p_via,
                             p_scanned, p_ref)
            AS u(seq, scan_id, ticket_id, direction, outcome, reason, via, scanned_at, ref_seq)
    ), ins AS (
        INSERT INTO checkins (gate_id, seq, event_id, scan_id, ticket_id, direction, outcome,
                              reason, via, scanned_at, at, skew, ref_seq)
        SELECT p_gate, u.seq, g.event_id, u.scan_id, u.ticket_id, u.direction, u.outcome,
               u.reason, u.via, u.scanned_at, u.scanned_at + p_skew, p_skew, u.ref_seq FROM u
        ON CONFLICT (gate_id, seq) DO NOTHING
        RETURNING checkins.seq, checkins.scan_id, checkins.ticket_id, checkins.direction,
                  checkins.outcome, checkins.reason, checkins.via, checkins.scanned_at,
                  checkins.at, checkins.ref_seq
    ), adm AS (
        SELECT ins.seq, ins.ticket_id, ins.direction FROM ins
        WHERE ins.outcome = 'admit' AND ins.ticket_id IS NOT NULL
    ), keyed AS (
        SELECT ins.*, CASE WHEN ins.outcome = 'deny' THEN 'checkin.invalid'
                           WHEN ins.outcome = 'annul' THEN 'checkin.annulled'
                           WHEN ins.outcome = 'passed' THEN 'checkin.passed'
                           WHEN ins.outcome = 'tailgate' THEN 'checkin.tailgate'
                           WHEN ins.direction = 'in' THEN 'checkin.performed'
                           ELSE 'checkout.performed' END AS rk FROM ins
    ), ob AS (
        INSERT INTO outbox (routing_key, event_id, body)
        -- Strings through to_json (escaped), numbers as Postgres prints them (float8: shortest
        -- exact form; never NaN or infinite, the API refuses those).
        SELECT k.rk, g.event_id, format(
            '{"type":"%s","event_id":%s,"gate_id":%s,"gate_name":%s,"seq":%s,"scan_id":"%s",'
            '"ticket_id":%s,"direction":"%s","outcome":"%s","reason":%s,"via":%s,'
            '"scanned_at":%s,"at":%s,"skew":%s,"ref_seq":%s,"stored_at":%s}',
            k.rk, g.event_id, p_gate, to_json(g.name), k.seq, encode(k.scan_id, 'hex'),
            coalesce(k.ticket_id::text, 'null'), k.direction, k.outcome,
            coalesce(to_json(k.reason)::text, 'null'), to_json(k.via), k.scanned_at, k.at,
            p_skew, coalesce(k.ref_seq::text, 'null'), extract(epoch FROM clock_timestamp()))
        FROM keyed k ORDER BY k.seq
    )
    SELECT (SELECT count(*) FROM ins) AS stored,
           (SELECT array_agg(adm.seq ORDER BY adm.seq) FROM adm) AS adm_seqs,
           (SELECT array_agg(adm.ticket_id ORDER BY adm.seq) FROM adm) AS adm_tickets,
           (SELECT array_agg('checkin.' || adm.direction ORDER BY adm.seq) FROM adm)
               AS adm_kinds,
           (SELECT array_agg(DISTINCT adm.ticket_id) FROM adm) AS tickets
    INTO r;
    stored := r.stored;

    IF r.stored < cardinality(p_seq) THEN
        SELECT c.seq INTO clash FROM checkins c
        JOIN unnest(p_seq, p_scan) AS u(seq, scan_id) ON c.seq = u.seq
        WHERE c.gate_id = p_gate AND c.scan_id <> u.scan_id ORDER BY c.seq LIMIT 1;
        IF clash IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'TS409', DETAIL = clash::text,
                MESSAGE = format('seq %s is already stored with a different scan_id', clash);
        END IF;
    END IF;

    -- 2b. Annulments: the gate's admission ref_seq (stored before or in this batch: a gate
    -- pushes in seq order) is marked annulled and loses any conflict flag; presence, figures
    -- and conflicts leave it out. Its annulment goes into the feed after the admissions, so
    -- every gate puts the ticket back where it was. An annulment naming no admission of this
    -- gate is kept as the gate's record and changes nothing.
    IF 'annul' = ANY (p_outcome) THEN
        WITH an AS (
            SELECT c.seq, c.ref_seq FROM checkins c
            WHERE c.gate_id = p_gate AND c.seq = ANY (p_seq) AND c.outcome = 'annul'
        ), marked AS (
            UPDATE checkins c SET annulled = true, conflict = false FROM an
            WHERE c.gate_id = p_gate AND c.seq = an.ref_seq AND c.outcome = 'admit'
              AND NOT c.annulled AND c.ticket_id IS NOT NULL
            RETURNING an.seq, c.ticket_id
        )
        SELECT array_agg(m.seq ORDER BY m.seq) AS seqs,
               array_agg(m.ticket_id ORDER BY m.seq) AS tickets
        FROM marked m INTO a;
        IF a.seqs IS NOT NULL THEN
            SELECT array_agg(x.seq ORDER BY x.seq), array_agg(x.ticket_id ORDER BY x.seq),
                   array_agg(x.kind ORDER BY x.seq),
                   (SELECT array_agg(DISTINCT t) FROM unnest(r.tickets || a.tickets) t)
            INTO r.adm_seqs, r.adm_tickets, r.adm_kinds, r.tickets
            FROM (SELECT * FROM unnest(r.adm_seqs, r.adm_tickets, r.adm_kinds)
                      AS u(seq, ticket_id, kind)
                  UNION ALL
                  SELECT s, t, 'checkin.annulled' FROM unnest(a.seqs, a.tickets) AS v(s, t)) x;
        END IF;
    END IF;

    -- 3 and 4. Tickets admitted (or annulled): lock them (sorted: pushes never wait in a cycle; the two-int
    -- key space is apart from db.py's), then recompute their conflicts by corrected time. The
    -- key is per event: a gate pushing another event's ticket ids never waits for its pushes.
    conflicts := 0;
    IF r.tickets IS NOT NULL AND g.reentry <> 'always' THEN
        PERFORM count(pg_advisory_xact_lock(29525, s.k)) FROM (
            SELECT DISTINCT hashint8(t) # hashint8(g.event_id) AS k FROM unnest(r.tickets) t
            ORDER BY 1) s;
        WITH w AS (
            SELECT c.gate_id, c.seq, c.ticket_id, c.direction, c.at, c.conflict,
                   lag(c.direction) OVER o AS prev_dir, lag(c.gate_id) OVER o AS prev_gate,
                   lag(c.at) OVER o AS prev_at,
                   count(*) FILTER (WHERE c.direction = 'in')
                       OVER (o ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_ins
            -- One index look-up per ticket, whatever the statistics say: OFFSET 0 keeps the
            -- planner from flattening the subquery into one scan of the event's admissions
            -- (with stale stats on a table that grew fast it did: 36 ms a push, and rising).
            -- An admission's day is the boundary of the event's automatic check-out before it
            -- (NULL without one, migrations/0012_checkout.sql): an entry on a later day is no
            -- conflict, and "never" allows one entry a day.
            FROM unnest(r.tickets) AS t(id) CROSS JOIN LATERAL (
                SELECT ci.*, tessera_checkout_boundary(ci.at, g.timezone, g.checkout_time) AS day
                FROM checkins ci
                WHERE ci.event_id = g.event_id AND ci.ticket_id = t.id
                  AND ci.outcome = 'admit' AND NOT ci.annulled OFFSET 0) c
            WINDOW o AS (PARTITION BY c.ticket_id, c.day ORDER BY c.at, c.gate_id, c.seq)
        ), t AS (
            SELECT w.*, (w.direction = 'in' AND CASE WHEN g.reentry = 'never'
                                                     THEN w.earlier_ins > 0
                                                     ELSE coalesce(w.prev_dir = 'in', false)
                                                END) AS should
            FROM w
        ), upd AS (
            UPDATE checkins c SET conflict = t.should FROM t
            WHERE c.gate_id = t.gate_id AND c.seq = t.seq AND c.conflict <> t.should
            RETURNING c.gate_id, c.seq, c.scan_id, c.ticket_id, c.at, c.conflict, t.prev_gate,
                      t.prev_at
        ), ob AS (
            INSERT INTO outbox (routing_key, event_id, body)
            SELECT 'checkin.conflict', g.event_id, jsonb_build_object(
                'type', 'checkin.conflict', 'event_id', g.event_id, 'gate_id', upd.gate_id,
                'gate_name', gc.name, 'seq', upd.seq, 'scan_id', encode(upd.scan_id, 'hex'),
                'ticket_id', upd.ticket_id, 'at', upd.at,
                'entry', jsonb_build_object('gate_id', upd.prev_gate, 'gate_name', pg.name,
                                            'at', upd.prev_at),
                'stored_at', extract(epoch FROM clock_timestamp()))::text
            FROM upd JOIN gates gc ON gc.gate_id = upd.gate_id
            LEFT JOIN gates pg ON pg.gate_id = upd.prev_gate
            WHERE upd.conflict
        )
        SELECT count(*) FILTER (WHERE upd.conflict) INTO conflicts FROM upd;
    END IF;

    -- 5. The gate's highest contiguous seq.
    UPDATE gates SET acked_seq = coalesce((
        SELECT max(x.seq) FROM (
            SELECT c.seq, c.seq - row_number() OVER (ORDER BY c.seq) AS run FROM checkins c
            WHERE c.gate_id = p_gate AND c.seq > gates.acked_seq) x
        WHERE x.run = gates.acked_seq), gates.acked_seq)
    WHERE gates.gate_id = p_gate RETURNING gates.acked_seq INTO acked;

    -- 6. Last and short: the admissions' feed entries (tessera_append_feed); without p_feed
    -- the caller appends them itself once for a whole group of pushes, as its last step.
    event_id := g.event_id;
    IF p_feed THEN
        PERFORM tessera_append_feed(
            g.event_id, array_fill(p_gate, ARRAY[coalesce(cardinality(r.adm_seqs), 0)]),
            r.adm_seqs, r.adm_tickets, r.adm_kinds);
    ELSE
        adm_seqs := r.adm_seqs;
        adm_tickets := r.adm_tickets;
        adm_kinds := r.adm_kinds;
    END IF;
END
$fn$;

-- The signature before door operations (0009_door_ops.sql added p_ref), kept for a rolling
-- upgrade: a syncd replica still on the older code calls it between `syncd migrate` and its own
-- restart, and its pushes are stored as before (an older syncd refuses door rows, so every
-- p_ref is NULL). It is the same push: one body, above.
CREATE OR REPLACE FUNCTION tessera_store_push(
    p_gate bigint, p_skew float8, p_seq bigint[], p_scan bytea[], p_ticket bigint[],
    p_direction text[], p_outcome text[], p_reason text[], p_via text[], p_scanned float8[],
    p_feed boolean,
    OUT acked bigint, OUT stored bigint, OUT conflicts bigint, OUT event_id bigint,
    OUT adm_seqs bigint[], OUT adm_tickets bigint[], OUT adm_kinds text[]
) LANGUAGE sql AS $fn$
    SELECT * FROM tessera_store_push(
        p_gate, p_skew, p_seq, p_scan, p_ticket, p_direction, p_outcome, p_reason, p_via,
        p_scanned, array_fill(NULL::bigint, ARRAY[cardinality(p_seq)]), p_feed)
$fn$;

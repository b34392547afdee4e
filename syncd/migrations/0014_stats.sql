-- Each ticket's latest admission that counts, in the order every reader of it asks for
-- (DISTINCT ON (ticket_id) ... ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC): the event
-- figures' presence (syncd/api/queries/stats.py), the gates' presence (syncd/feed/read.py), the
-- check-out count (syncd/checkout/timer.py). Without it each of them sorted every admission of
-- the event, on disk past a few hundred thousand (scripts/bench_stats); with it they read the
-- index once, in order, from the index alone where the table is vacuumed.
-- direction and conflict ride along so that those reads need no table row (without conflict,
-- the gates' presence turned into an index scan that visits the table in index order, slower
-- than the sort it replaced). Setting a conflict flag is therefore no HOT update any more; it
-- is rare (a re-entry while inside) and an annulment, which changes the predicate, never was.
-- The build blocks writes to checkins for about a second per million rows; on a large server
-- it can be built beforehand with CREATE INDEX CONCURRENTLY under this name and definition.
CREATE INDEX IF NOT EXISTS checkins_latest
    ON checkins (event_id, ticket_id, at DESC, gate_id DESC, seq DESC)
    INCLUDE (direction, conflict)
    WHERE outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL;

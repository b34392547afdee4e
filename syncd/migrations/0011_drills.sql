-- Pre-doors drills (issue 18): each gate's last drill, as it reported it (POST /api/v1/gate/drill).
-- Only the last one is kept: it is what an organiser checks before doors ("is every gate green?").
-- last_drill holds the board: {"ran_at": gate clock, "seconds": s, "items": [{name, status,
-- figure, detail}, ...]}, at most 16 items of short, printable text (shared/protocol.py), never
-- a secret (about 25 kB at the very most: the size check is a backstop, never reached).
-- last_drill_at is syncd's clock when the report arrived.
ALTER TABLE gates
    ADD COLUMN last_drill_at     timestamptz,
    ADD COLUMN last_drill_result text CHECK (last_drill_result IN ('green', 'amber', 'red')),
    ADD COLUMN last_drill        jsonb CHECK (pg_column_size(last_drill) <= 65536);

-- Tessera gate store, version 7: groups (issue 18).
-- A ticket may belong to a group (an order, a family: the list's `group` column; NULL = none).
-- One scan of any member's code can admit the others (gate.checkin.group), each decided and
-- journaled on its own. The partial index finds a group's members in one probe and holds nothing
-- for tickets without a group. Index names end in _a or _b (see version 3): a snapshot builds its
-- staging table's under the other name.
ALTER TABLE tickets ADD COLUMN group_ref TEXT;
CREATE INDEX tickets_group_a ON tickets (event_id, group_ref) WHERE group_ref IS NOT NULL;
-- Lists loaded before this version carry no groups: an enrolled gate reads the feed from the
-- start again (or a snapshot, when it is long). A gate fed only by `gate import-list` needs a new
-- bundle (format 3) to know its groups.
UPDATE sync_state SET cursor = '';

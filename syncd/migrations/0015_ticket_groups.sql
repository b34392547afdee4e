-- `tessera tickets list --group NAME` (GET .../tickets?group=NAME) reads the tickets of one group
-- in ticket order: a partial index of grouped tickets only, so events without groups pay nothing
-- and a group's page does not read the whole event.
CREATE INDEX IF NOT EXISTS tickets_group
    ON tickets (event_id, group_ref, ticket_id) WHERE group_ref <> '';

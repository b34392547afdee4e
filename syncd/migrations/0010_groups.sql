-- Groups (issue 18): a ticket may belong to a group (an order, a family), named by the list's
-- optional `group` column; '' = none. A gate can admit the whole group from one scan of any
-- member's code, each ticket still checked and journaled on its own. The parser bounds the
-- name (shared.bundle.MAX_GROUP_CHARS, printable text); the check keeps any other writer to it.
-- A constant default: no table rewrite; the check reads the table once.
ALTER TABLE tickets
    ADD COLUMN group_ref text NOT NULL DEFAULT '' CHECK (length(group_ref) <= 64);

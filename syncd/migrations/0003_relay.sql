-- The relay deletes each outbox row once the broker confirmed it (syncd/outbox.py): no more
-- sent_at, no partial index of unsent rows, no purge of old sent rows. Rows already sent go now,
-- since every row left in the table is one to publish. Relays of older releases fail on the
-- missing column without publishing anything, so replicas can be replaced after migrating.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX outbox_unsent;
ALTER TABLE outbox DROP COLUMN sent_at;

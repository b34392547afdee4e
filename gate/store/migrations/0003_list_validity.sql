-- Tessera gate store, version 3: every rule of the decision without the QR (docs/design.md section 2),
-- and a name search that ignores case and accents.
-- A manual admit (ticket number typed or picked from a search) has no signed code to read the
-- validity window from, so the list carries it (Unix seconds, 0 = no bound, as in the ticket).
ALTER TABLE tickets ADD COLUMN valid_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN valid_until INTEGER NOT NULL DEFAULT 0;
-- The holder name folded by gate.store.search.fold (casefold, NFKD, no combining marks), computed
-- at import; NULL without a name. The partial covering index keeps named tickets in name order:
-- a look-up reads it instead of the whole table. Index names end in _a or _b: a snapshot builds
-- its staging table's under the other name, and the swap keeps it (SQLite cannot rename one).
ALTER TABLE tickets ADD COLUMN search TEXT;
UPDATE tickets SET search = tessera_fold(holder) WHERE holder IS NOT NULL;
CREATE INDEX tickets_search_a ON tickets (search, event_id, ticket_id) WHERE search IS NOT NULL;
-- Lists loaded before this version have no validity dates: an enrolled gate reads the feed from
-- the start again (or a snapshot, when it is long), which brings every ticket's current window.
-- A gate fed only by `gate import-list` needs a new bundle (format 2).
UPDATE sync_state SET cursor = '';

-- Gates that tell each other (issue 16, docs/design.md section 6): each gate's own peer key,
-- syncd's certificate of it (signed with the event key), and where it answers on the venue LAN.
ALTER TABLE gates
    ADD COLUMN peer_key  bytea CHECK (length(peer_key) = 32),
    ADD COLUMN peer_cert bytea CHECK (length(peer_cert) <= 300),
    ADD COLUMN peer_urls text[] NOT NULL DEFAULT '{}';

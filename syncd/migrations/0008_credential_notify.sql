-- Replicas cache who a credential is (issue 22: one Postgres query per request was the largest
-- cost of 10,000 connected gates). A revoked, deleted or replaced credential must stop working
-- at once on every replica: its change is announced on tessera_credentials at commit
-- ('gate:<gate_id>' or 'token:<token_id>'), and each replica drops it from its cache and closes
-- that gate's open feed streams.
CREATE FUNCTION tessera_gate_credential_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
       OR NEW.credential_hash IS DISTINCT FROM OLD.credential_hash THEN
        PERFORM pg_notify('tessera_credentials', 'gate:' || OLD.gate_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER gates_credential_changed AFTER UPDATE OR DELETE ON gates
    FOR EACH ROW EXECUTE FUNCTION tessera_gate_credential_changed();

CREATE FUNCTION tessera_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
       OR NEW.role IS DISTINCT FROM OLD.role THEN
        PERFORM pg_notify('tessera_credentials', 'token:' || OLD.token_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION tessera_token_changed();

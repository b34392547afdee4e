-- Tenants, tokens, events, signing keys, tickets and the per-event change feed.

CREATE TABLE orgs (
    org_id      bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    token_id     bigserial PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs ON DELETE CASCADE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'organiser', 'viewer')),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- Event ids travel in the signed ticket as uint32.
CREATE SEQUENCE event_id_seq AS bigint MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE events (
    event_id    bigint PRIMARY KEY DEFAULT nextval('event_id_seq')
                CHECK (event_id BETWEEN 1 AND 4294967295),
    org_id      bigint NOT NULL REFERENCES orgs ON DELETE CASCADE,
    name        text NOT NULL,
    venue       text NOT NULL DEFAULT '',
    starts_at   timestamptz,
    ends_at     timestamptz,
    timezone    text NOT NULL DEFAULT 'UTC',
    zones       jsonb NOT NULL DEFAULT '[]',   -- list of names; index i = bit i of the zone mask
    reentry     text NOT NULL DEFAULT 'after_exit' CHECK (reentry IN ('never', 'after_exit', 'always')),
    change_seq  bigint NOT NULL DEFAULT 0,     -- last seq written to change_feed for this event
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE event_id_seq OWNED BY events.event_id;
CREATE INDEX events_org ON events (org_id);

CREATE TABLE signing_keys (
    event_id     bigint NOT NULL REFERENCES events ON DELETE CASCADE,
    kid          bytea NOT NULL CHECK (length(kid) = 4),
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    private_enc  bytea NOT NULL,               -- AES-256-GCM under the master key, never served
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    is_signer    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    PRIMARY KEY (event_id, kid),
    CHECK (NOT (is_signer AND status = 'retired'))
);
CREATE UNIQUE INDEX signing_keys_one_signer ON signing_keys (event_id) WHERE is_signer;

-- Ticket ids travel in the signed ticket as uint64; a positive bigint always fits.
CREATE SEQUENCE ticket_id_seq AS bigint MINVALUE 1;

CREATE TABLE tickets (
    ticket_id     bigint PRIMARY KEY DEFAULT nextval('ticket_id_seq'),
    event_id      bigint NOT NULL,             -- no FK: per-row RI triggers would halve bulk loads
    external_ref  text COLLATE "C" NOT NULL,
    nonce         bigint NOT NULL CHECK (nonce BETWEEN 0 AND 4294967295),
    kid           bytea NOT NULL,              -- key that signed the current issue
    zone          integer NOT NULL CHECK (zone BETWEEN 0 AND 65535),
    valid_from    bigint NOT NULL DEFAULT 0 CHECK (valid_from BETWEEN 0 AND 4294967295),
    valid_until   bigint NOT NULL DEFAULT 0 CHECK (valid_until BETWEEN 0 AND 4294967295),
    category      text NOT NULL DEFAULT '',
    holder        text NOT NULL DEFAULT '',
    email         text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked', 'blocked')),
    status_source text NOT NULL DEFAULT 'push' CHECK (status_source IN ('push', 'manual')),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, external_ref)
);
ALTER SEQUENCE ticket_id_seq OWNED BY tickets.ticket_id;

-- One ordered feed per event: seq is gap-free per event because writers take the event row lock
-- (UPDATE events SET change_seq = change_seq + n) and hold it until commit.
CREATE TABLE change_feed (
    event_id   bigint NOT NULL,   -- no FK, as for tickets: written in bulk
    seq        bigint NOT NULL,
    kind       text NOT NULL,   -- ticket.added|reissued|updated|revoked|blocked|unblocked, key.added|retired
    ticket_id  bigint,          -- for ticket.*: readers join tickets for the current state
    kid        bytea,           -- for key.*
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, seq)
);

-- The PostgreSQL schema, version 1: a public contract like schema.sql. A new database gets
-- exactly this, in one transaction under the migrator's advisory lock, which records the
-- version in its own table, oauth_state_store_migrations (not part of the schema). Until the
-- first release is published it changes in place.

-- What the store says about itself: `store_id` (random, made once).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Autovacuum visits this table after a few hundred dead rows (a consumed verifier lingers in
-- the dead row version until VACUUM reclaims it).
--
-- A callback and a consume rewrite their row in place (a heap-only tuple, HOT: no index entry;
-- a consume writes 3.4 WAL records and 250 bytes with its commit, not 7.9 and 607) when no
-- index covers a column they write (status, code_verifier, auth_code, error,
-- error_description, discovery, consumed_at; PostgreSQL 15 counts a partial index's predicate
-- columns too) and the row's page has room for the new version. fillfactor = 80 keeps a fifth
-- of each page free for those versions: with logins begun in bursts, 100 left about 1 update
-- in 35 without room (the first of each full page, moved to another page with an entry in
-- every index), 90 about 1 in 800 under 8 concurrent clients, 80 and 70 none; 80 costs about
-- 18 % more pages than 100, 70 about 31 %.
CREATE TABLE flows (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SHA-256 of the state; NULL while the row is unbound. The raw state never reaches the disk.
    state_key         BYTEA CHECK (state_key IS NULL OR octet_length(state_key) = 32),
    -- S256(code_verifier), base64url.
    code_challenge    TEXT NOT NULL CHECK (length(code_challenge) = 43),
    -- NULL once the flow is consumed or failed.
    code_verifier     TEXT,
    server_id         TEXT NOT NULL,
    client_id         TEXT,
    redirect_uri      TEXT,
    issuer            TEXT,
    resource          TEXT,
    scope             TEXT,
    status            TEXT NOT NULL
                      CHECK (status IN ('unbound', 'pending', 'completed', 'failed', 'consumed')),
    -- Unix milliseconds, from the database server's clock (one clock for all hosts).
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    consumed_at       BIGINT,
    -- The callback's result: the code (wiped on consume) or the error.
    auth_code         TEXT,
    error             TEXT,
    error_description TEXT,
    -- The callback must carry `iss` (RFC 9207) and it must equal `issuer`.
    require_issuer    BOOLEAN NOT NULL DEFAULT false,
    -- The creation time as the client recorded it, in its own unit (rmcp: Unix seconds): kept
    -- and handed back, never used for expiry.
    client_created_at BIGINT CHECK (client_created_at IS NULL OR client_created_at >= 0),
    -- An SDK's discovery state of the flow: opaque text set at promote,
    -- handed back by the consume and wiped in its tombstone.
    discovery         TEXT CHECK (discovery IS NULL OR length(discovery) <= 65536),
    -- true for a verifier the store generated for `begin`: never looked up by
    -- its challenge, so not in flows_code_challenge_key.
    generated_verifier BOOLEAN NOT NULL DEFAULT false,
    CHECK ((status = 'unbound') = (state_key IS NULL)),
    CHECK ((code_verifier IS NULL) = (status IN ('failed', 'consumed'))),
    CONSTRAINT flows_state_key_key UNIQUE (state_key),
    CONSTRAINT flows_generated_verifier_check CHECK (NOT generated_verifier OR status <> 'unbound')
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.0,
       autovacuum_vacuum_threshold = 200);

-- The challenge of an unbound row or of a caller-supplied verifier is UNIQUE. The insert names
-- this index as its ON CONFLICT arbiter: a begin that repeats both a challenge and a state is a
-- DuplicateChallenge, as on SQLite.
CREATE UNIQUE INDEX flows_code_challenge_key ON flows (code_challenge)
    WHERE NOT generated_verifier;

CREATE INDEX flows_by_expiry ON flows (expires_at);

-- A server's rows (pending verifiers, counts, invalidation, listing): no status, which every
-- callback and consume writes (see the table's fillfactor).
CREATE INDEX flows_by_server ON flows (server_id, client_id);

-- sweep --older-than walks the table in id order in bounded chunks (the primary key), as on
-- SQLite: no index of ended rows to write at every consume.

-- Token sets, one row per (server_id, client_id): see schema.sql for each column. Autovacuum
-- visits the table after a few dead rows (a replaced token lingers in the dead row version
-- until VACUUM reclaims it).
CREATE TABLE token_sets (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    server_id        TEXT NOT NULL CHECK (length(server_id) BETWEEN 1 AND 512),
    client_id        TEXT NOT NULL CHECK (length(client_id) BETWEEN 1 AND 512),
    generation       BIGINT NOT NULL CHECK (generation >= 1),
    access_token     TEXT CHECK (access_token IS NULL OR length(access_token) BETWEEN 1 AND 65536),
    refresh_token    TEXT CHECK (refresh_token IS NULL OR length(refresh_token) BETWEEN 1 AND 65536),
    token_type       TEXT CHECK (token_type IS NULL OR length(token_type) BETWEEN 1 AND 64),
    scope            TEXT,
    issuer           TEXT,
    extra            TEXT CHECK (extra IS NULL OR length(extra) <= 65536),
    -- Unix milliseconds, from the database server's clock.
    received_at      BIGINT NOT NULL,
    expires_at       BIGINT CHECK (expires_at IS NULL OR expires_at >= received_at),
    replaced         BYTEA CHECK (replaced IS NULL
                                  OR (octet_length(replaced) % 32 = 0
                                      AND octet_length(replaced) BETWEEN 32 AND 128)),
    revoked_at       BIGINT,
    revoked_reason   TEXT CHECK (revoked_reason IS NULL OR length(revoked_reason) BETWEEN 1 AND 64),
    lease_holder     TEXT CHECK (lease_holder IS NULL OR length(lease_holder) = 22),
    lease_owner      TEXT CHECK (lease_owner IS NULL OR length(lease_owner) <= 200),
    lease_expires_at BIGINT,
    CONSTRAINT token_sets_key UNIQUE (server_id, client_id),
    CHECK ((access_token IS NULL) = (revoked_at IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CHECK ((access_token IS NULL) = (token_type IS NULL)),
    CHECK (refresh_token IS NULL OR access_token IS NOT NULL),
    CHECK (extra IS NULL OR access_token IS NOT NULL),
    CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL)),
    CHECK ((lease_holder IS NULL) = (lease_owner IS NULL)),
    CHECK (lease_holder IS NULL OR refresh_token IS NOT NULL)
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 50);

-- The schema of a store file, version 1: a public contract (README.md, "The file format"). A
-- new file gets exactly this, in one transaction, with `PRAGMA user_version = 1` and
-- `PRAGMA application_id = 0x4F415353` ("OASS", 1329681235: what says the file is a store;
-- a file without it is never opened as one). Until the first release is published the schema
-- changes in place; a later version reaches a file through migrations/NNNN_name.sql, one
-- transaction each.

-- What the file says about itself: `store_id`, a random id made once (two stores with the
-- same id share one file).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- Pending OAuth authorization-code + PKCE flows, one row a flow.
-- - `id` = expires_at * 1048576 + n (n counts the flows of one expiry millisecond, from 0): the
--   rowid order is the expiry order, and a sweep deletes from the table's front.
-- - `state_key` is SHA-256 of the state, NULL while the row is unbound; the raw state never
--   reaches the disk. `code_challenge` is S256(code_verifier), base64url. `code_verifier` is
--   NULL once the flow is consumed or failed. Times are Unix milliseconds.
-- - `generated_verifier`: 1 for a verifier the store generated (32 random bytes, never looked
--   up by its challenge), which has no entry in flows_by_challenge; 0 for an unbound row or
--   a caller-supplied verifier, whose challenge is UNIQUE.
-- - `auth_code` or `error`, `error_description`: the callback's result (the code is wiped on
--   consume).
-- - `require_issuer`: 1 when the callback must carry `iss` (RFC 9207) equal to `issuer`.
-- - `client_created_at`: the creation time as the client recorded it, in its own unit (rmcp:
--   Unix seconds); kept and handed back, never used for expiry.
-- - `discovery`: an SDK's discovery state of the flow, opaque text (at most 65536 characters)
--   set at promote, handed back by the consume and wiped in its tombstone.
CREATE TABLE flows (
    id                 INTEGER PRIMARY KEY,
    state_key          BLOB UNIQUE CHECK (state_key IS NULL OR length(state_key) = 32),
    code_challenge     TEXT NOT NULL CHECK (length(code_challenge) = 43),
    code_verifier      TEXT,
    server_id          TEXT NOT NULL,
    client_id          TEXT,
    redirect_uri       TEXT,
    issuer             TEXT,
    resource           TEXT,
    scope              TEXT,
    status             TEXT NOT NULL
                       CHECK (status IN ('unbound', 'pending', 'completed', 'failed', 'consumed')),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL CHECK (expires_at BETWEEN 1 AND 8796093022207),
    consumed_at        INTEGER,
    auth_code          TEXT,
    error              TEXT,
    error_description  TEXT,
    require_issuer     INTEGER NOT NULL DEFAULT 0 CHECK (require_issuer IN (0, 1)),
    client_created_at  INTEGER CHECK (client_created_at IS NULL OR client_created_at >= 0),
    discovery          TEXT CHECK (discovery IS NULL OR length(discovery) <= 65536),
    generated_verifier INTEGER NOT NULL DEFAULT 0 CHECK (generated_verifier IN (0, 1)),
    CHECK ((status = 'unbound') = (state_key IS NULL)),
    CHECK ((code_verifier IS NULL) = (status IN ('failed', 'consumed'))),
    CHECK (generated_verifier = 0 OR status <> 'unbound'),
    CHECK (id >= expires_at * 1048576 AND id < (expires_at + 1) * 1048576)
) STRICT;

CREATE UNIQUE INDEX flows_by_challenge ON flows (code_challenge)
    WHERE generated_verifier = 0;

-- A server's rows, whatever their status, so that a status change writes no entry here.
CREATE INDEX flows_by_server ON flows (server_id, client_id);

-- No other index: each costs about one WAL frame a write. `sweep --older-than` walks the
-- table in id order in bounded chunks instead of searching an index of ended rows.

-- Token sets: the tokens of one (server_id, client_id), the newest only (docs/refresh.md).
-- Times are Unix milliseconds.
-- - `generation` grows by one with every save that changes the tokens, every refresh and every
--   revocation; a refresh saves only over the generation it leased (compare-and-swap).
-- - `access_token`, `refresh_token` and `extra` (the token response's other members, opaque
--   text) are secrets: set to NULL or deleted with the row when replaced, revoked or
--   forgotten; secure_delete zeroes the old cells, and the WAL scrub rules of verifiers apply.
-- - `replaced`: SHA-256 of the last (at most 4) refresh tokens this row replaced, newest first,
--   so that no save can store one of them again.
-- - `revoked_at`, `revoked_reason`: the authorization server refused the refresh token of the
--   generation that was current (`invalid_grant`, ...); the row keeps its key, generation and
--   times, and no token.
-- - `lease_*`: the process refreshing the set now: `lease_holder` a random id (22 characters)
--   new for each lease, `lease_owner` "pid N" and an optional label, until `lease_expires_at`.
CREATE TABLE token_sets (
    id               INTEGER PRIMARY KEY,
    server_id        TEXT NOT NULL CHECK (length(server_id) BETWEEN 1 AND 512),
    client_id        TEXT NOT NULL CHECK (length(client_id) BETWEEN 1 AND 512),
    generation       INTEGER NOT NULL CHECK (generation >= 1),
    access_token     TEXT CHECK (access_token IS NULL OR length(access_token) BETWEEN 1 AND 65536),
    refresh_token    TEXT CHECK (refresh_token IS NULL OR length(refresh_token) BETWEEN 1 AND 65536),
    token_type       TEXT CHECK (token_type IS NULL OR length(token_type) BETWEEN 1 AND 64),
    scope            TEXT,
    issuer           TEXT,
    extra            TEXT CHECK (extra IS NULL OR length(extra) <= 65536),
    received_at      INTEGER NOT NULL,
    expires_at       INTEGER CHECK (expires_at IS NULL OR expires_at >= received_at),
    replaced         BLOB CHECK (replaced IS NULL
                                 OR (length(replaced) % 32 = 0 AND length(replaced) BETWEEN 32 AND 128)),
    revoked_at       INTEGER,
    revoked_reason   TEXT CHECK (revoked_reason IS NULL OR length(revoked_reason) BETWEEN 1 AND 64),
    lease_holder     TEXT CHECK (lease_holder IS NULL OR length(lease_holder) = 22),
    lease_owner      TEXT CHECK (lease_owner IS NULL OR length(lease_owner) <= 200),
    lease_expires_at INTEGER,
    CHECK ((access_token IS NULL) = (revoked_at IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CHECK ((access_token IS NULL) = (token_type IS NULL)),
    CHECK (refresh_token IS NULL OR access_token IS NOT NULL),
    CHECK (extra IS NULL OR access_token IS NOT NULL),
    CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL)),
    CHECK ((lease_holder IS NULL) = (lease_owner IS NULL)),
    CHECK (lease_holder IS NULL OR refresh_token IS NOT NULL)
) STRICT;

-- The one key: every token statement finds its row through it (updates never change the key,
-- so a refresh writes no entry here).
CREATE UNIQUE INDEX token_sets_by_key ON token_sets (server_id, client_id);

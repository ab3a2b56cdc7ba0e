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

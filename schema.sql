-- The schema after all migrations: a public contract (README.md, "The file format"). Tests keep it equal to migrations/
-- Pending OAuth authorization-code + PKCE flows, one row a flow: in `flow_rows` (migration 0007)
-- for every flow written at schema 7 or later, in `flows` for a row written before.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- flow_rows (migration 0007): the flows. The columns are those of `flows` below, plus:
-- - `id` = expires_at * 1048576 + n (n counts the flows of one expiry millisecond, from 0): the
--   rowid order is the expiry order, and a sweep deletes from the table's front.
-- - `generated_verifier`: 1 for a verifier the store generated (32 random bytes, never looked
--   up by its challenge), which has no entry in flow_rows_by_challenge; 0 for an unbound row or
--   a caller-supplied verifier, whose challenge is UNIQUE across both tables.
CREATE TABLE flow_rows (
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

CREATE UNIQUE INDEX flow_rows_by_challenge ON flow_rows (code_challenge)
    WHERE generated_verifier = 0;

CREATE INDEX flow_rows_by_server ON flow_rows (server_id, client_id);

CREATE INDEX flow_rows_by_end ON flow_rows (coalesce(consumed_at, created_at))
    WHERE status IN ('consumed', 'failed');

-- flows: the table of schema 1 to 6. It keeps the rows written before migration 0007 (and by
-- a program of schema 6 or older that still has the file open) until they are swept; every
-- operation reads both tables. Nothing new is written here.
-- require_issuer (migration 0002): 1 when the callback must carry `iss` (RFC 9207) equal to `issuer`.
-- client_created_at (migration 0002): the creation time as the client recorded it, in its own
-- unit (rmcp: Unix seconds); kept and handed back, never used for expiry.
-- discovery (migration 0004): an SDK's discovery state of the flow, opaque text (at most 65536
-- characters) set at promote, handed back by the consume and wiped in its tombstone.
CREATE TABLE flows (
    id                INTEGER PRIMARY KEY,
    -- SHA-256 of the state; NULL while the row is unbound. The raw state never reaches the disk.
    state_key         BLOB UNIQUE CHECK (state_key IS NULL OR length(state_key) = 32),
    -- S256(code_verifier), base64url.
    code_challenge    TEXT NOT NULL UNIQUE CHECK (length(code_challenge) = 43),
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
    -- Unix milliseconds.
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    consumed_at       INTEGER,
    -- The callback's result: the code (wiped on consume) or the error.
    auth_code         TEXT,
    error             TEXT,
    error_description TEXT,
    require_issuer    INTEGER NOT NULL DEFAULT 0 CHECK (require_issuer IN (0, 1)),
    client_created_at INTEGER CHECK (client_created_at IS NULL OR client_created_at >= 0),
    discovery         TEXT CHECK (discovery IS NULL OR length(discovery) <= 65536),
    CHECK ((status = 'unbound') = (state_key IS NULL)),
    CHECK ((code_verifier IS NULL) = (status IN ('failed', 'consumed')))
) STRICT;

CREATE INDEX flows_by_expiry ON flows (expires_at);

-- flows_by_server (migration 0005 dropped `status` from it): a server's rows, whatever their
-- status, so that a status change writes no entry here.
CREATE INDEX flows_by_server ON flows (server_id, client_id);

-- flows_by_end (migrations 0003, 0006): the rows that ended (tombstones and failed flows) by the
-- time they ended, for sweep --older-than; other rows have no entry.
CREATE INDEX flows_by_end ON flows (coalesce(consumed_at, created_at))
    WHERE status IN ('consumed', 'failed');

-- A state key, or a challenge that must be unique, already in the other table is a duplicate,
-- reported with the message SQLite gives for the table's own UNIQUE constraint. The challenge
-- is checked first, in both tables, so that a flow whose state and challenge both collide is a
-- duplicate challenge wherever the other row is, as in the one table of schema 6.
CREATE TRIGGER flow_rows_unique_insert BEFORE INSERT ON flow_rows
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.code_challenge')
        WHERE NEW.generated_verifier = 0
          AND (EXISTS (SELECT 1 FROM flows WHERE code_challenge = NEW.code_challenge)
               OR EXISTS (SELECT 1 FROM flow_rows
                          WHERE code_challenge = NEW.code_challenge AND generated_verifier = 0));
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.state_key')
        WHERE NEW.state_key IS NOT NULL
          AND EXISTS (SELECT 1 FROM flows WHERE state_key = NEW.state_key);
END;

CREATE TRIGGER flow_rows_unique_bind BEFORE UPDATE OF state_key ON flow_rows
    WHEN NEW.state_key IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.state_key')
        WHERE EXISTS (SELECT 1 FROM flows WHERE state_key = NEW.state_key);
END;

CREATE TRIGGER flows_unique_insert BEFORE INSERT ON flows
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.code_challenge')
        WHERE EXISTS (SELECT 1 FROM flow_rows
                      WHERE code_challenge = NEW.code_challenge AND generated_verifier = 0);
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.state_key')
        WHERE NEW.state_key IS NOT NULL
          AND EXISTS (SELECT 1 FROM flow_rows WHERE state_key = NEW.state_key);
END;

CREATE TRIGGER flows_unique_bind BEFORE UPDATE OF state_key ON flows
    WHEN NEW.state_key IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: flows.state_key')
        WHERE EXISTS (SELECT 1 FROM flow_rows WHERE state_key = NEW.state_key);
END;

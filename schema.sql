-- The schema after all migrations: a public contract (README.md, "The file format"). Tests keep it equal to migrations/
-- Pending OAuth authorization-code + PKCE flows, one row a flow.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

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

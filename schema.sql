-- The schema after all migrations: a public contract (see DESIGN.md). Tests keep it equal to migrations/.
-- Pending OAuth authorization-code + PKCE flows, one row a flow.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

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
    CHECK ((status = 'unbound') = (state_key IS NULL)),
    CHECK ((code_verifier IS NULL) = (status IN ('failed', 'consumed')))
) STRICT;

CREATE INDEX flows_by_expiry ON flows (expires_at);

CREATE INDEX flows_by_server ON flows (server_id, client_id, status);

-- The lean layout (issue 17): new flows go to `flow_rows`, whose rowid is its expiry order and
-- whose challenge index holds only the verifiers that came from outside the store.
--
-- - `id` is `expires_at * 1048576 + n` (n counts the flows of one expiry millisecond), so the
--   table itself is in expiry order: a sweep deletes from its front, and no expiry index is
--   needed.
-- - `generated_verifier` is 1 for a verifier the store generated itself (32 random bytes);
--   such a challenge cannot repeat and is never looked up, so it has no entry in
--   flow_rows_by_challenge. Unbound rows and caller-supplied verifiers (0) stay UNIQUE there.
--
-- The table `flows` stays as it was: it keeps the rows written before this migration (and by a
-- program of schema 6 or older that still has the file open) until they are swept. No row is
-- copied, so the migration takes no longer on a large file than on an empty one. The triggers
-- keep a state key, and a challenge that must be unique, unique across both tables.
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

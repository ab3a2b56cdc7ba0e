-- A verifier the store generated for `begin` (32 random bytes) is never looked up by its
-- challenge, as in the SQLite file (migrations/0007_flow_rows.sql): `generated_verifier` marks
-- such a row, and the challenge's UNIQUE index holds only the others (unbound rows and
-- caller-supplied verifiers), so a native flow writes no entry in it. Rows written before this
-- migration get false, and stay in the index. The insert names this index as its ON CONFLICT
-- arbiter, so a begin repeating both a challenge and a state is a DuplicateChallenge, as on
-- SQLite, whatever order PostgreSQL checks the indexes in.
-- Applied inside the migrator's transaction; no BEGIN or COMMIT here.
ALTER TABLE flows ADD COLUMN generated_verifier BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE flows ADD CONSTRAINT flows_generated_verifier_check
    CHECK (NOT generated_verifier OR status <> 'unbound');
ALTER TABLE flows DROP CONSTRAINT flows_code_challenge_key;
CREATE UNIQUE INDEX flows_code_challenge_key ON flows (code_challenge)
    WHERE NOT generated_verifier;

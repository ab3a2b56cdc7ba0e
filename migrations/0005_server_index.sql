-- Leaner indexes, 1 of 2: flows_by_server loses `status`.
--
-- A consume, a callback and a promote change a row's status; with `status` in this index each
-- of them moved the row's entry within it (a delete and an insert). Its queries (a server's
-- live verifiers, counts, deletes, listings) filter the status on the row, among the rows of
-- one server and client.
--
-- Only an index changes: the table, its rows and every statement of older programs stay valid.
-- 0006 is a migration of its own so that each holds the write lock for one index build.
DROP INDEX flows_by_server;
CREATE INDEX flows_by_server ON flows (server_id, client_id);

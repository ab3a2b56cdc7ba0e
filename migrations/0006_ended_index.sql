-- Leaner indexes, 2 of 2: flows_by_end keeps only the rows that ended (tombstones and failed
-- flows), the only rows `sweep --older-than` looks for, and loses its `status` column.
--
-- A new flow, a promote and a callback now write no entry in it; a consume or a failure writes
-- one, once. Statements that search it name its statuses (the index's own condition).
--
-- Only an index changes: the table, its rows and every statement of older programs stay valid.
DROP INDEX flows_by_end;
CREATE INDEX flows_by_end ON flows (coalesce(consumed_at, created_at))
    WHERE status IN ('consumed', 'failed');

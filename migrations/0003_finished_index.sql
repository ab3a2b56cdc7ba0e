-- An index for `sweep --older-than` (Store::sweep_finished): its batch delete looks for
-- tombstones and failed flows by the time they ended, which no index covered, so every batch
-- scanned the whole table. The second column is the statement's own expression.
CREATE INDEX flows_by_end ON flows (status, coalesce(consumed_at, created_at));

-- The discovery state an SDK keeps with a flow between its two legs, as in the SQLite file
-- (migrations/0004_discovery.sql): opaque text set at promote, returned by the consume that
-- takes the flow, wiped in its tombstone. Rows written before this migration get NULL.
-- Applied inside the migrator's transaction; no BEGIN or COMMIT here.
ALTER TABLE flows ADD COLUMN
    discovery TEXT CHECK (discovery IS NULL OR length(discovery) <= 65536);

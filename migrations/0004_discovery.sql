-- The discovery state an SDK keeps with a flow between its two legs (the MCP TypeScript SDK's
-- `saveDiscoveryState` / `discoveryState`: the authorization server's metadata, found on the
-- leg that builds the authorization URL, needed again on the callback leg). Opaque text the
-- store only keeps and hands back: set when the flow is bound (promote), returned by the
-- consume that takes the flow, and wiped in its tombstone. Rows written before this migration
-- get NULL.
ALTER TABLE flows ADD COLUMN
    discovery TEXT CHECK (discovery IS NULL OR length(discovery) <= 65536);

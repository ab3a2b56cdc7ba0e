-- Two things an SDK keeps with a pending flow that 0001 had no column for (the rmcp adapter's
-- StoredAuthorizationState). Rows written before this migration get require_issuer = 0 and a
-- NULL client_created_at.

-- 1: the callback must carry `iss` (RFC 9207) and it must equal `issuer`.
ALTER TABLE flows ADD COLUMN
    require_issuer INTEGER NOT NULL DEFAULT 0 CHECK (require_issuer IN (0, 1));

-- The creation time as the client recorded it, in its own unit (rmcp: Unix seconds): kept and
-- handed back, never used for expiry (created_at and expires_at are the store's own times).
ALTER TABLE flows ADD COLUMN
    client_created_at INTEGER CHECK (client_created_at IS NULL OR client_created_at >= 0);

// oauth-state-store for Node.js: the ES module entry point (the same objects as index.cjs).
import cjs from './index.cjs';

export const { Store, LoopbackCallback, attach, withSharedFlows, withSharedTokens, RefreshLease, ErrorCode, StoreError, generateState } = cjs;
export default cjs;

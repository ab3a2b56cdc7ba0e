'use strict';
// oauth-state-store for Node.js: the Rust core through N-API (CommonJS entry point).
const { Store, generateState } = require('./lib/store.cjs');
const { LoopbackCallback, attach } = require('./lib/callback.cjs');
const { withSharedFlows } = require('./lib/shared-flows.cjs');
const { RefreshLease } = require('./lib/tokens.cjs');
const { withSharedTokens } = require('./lib/shared-tokens.cjs');
const { ErrorCode, StoreError } = require('./lib/errors.cjs');

module.exports = {
  Store,
  LoopbackCallback,
  attach,
  withSharedFlows,
  withSharedTokens,
  RefreshLease,
  ErrorCode,
  StoreError,
  generateState,
};

'use strict';
// Loads the compiled addon (built from source by `npm run build`).
const path = require('node:path');

const file = path.join(__dirname, '..', 'oauth-state-store.node');
let native;
try {
  native = require(file);
} catch (cause) {
  throw new Error(
    `oauth-state-store: the native addon ${file} could not be loaded; build it from source ` +
      'with `npm ci && npm run build` in bindings/node (needs a Rust toolchain)',
    { cause },
  );
}
module.exports = native;

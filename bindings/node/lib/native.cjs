'use strict';
// Loads the native addon for this system: a build from source in this package's directory
// (`npm run build` in a clone), else the prebuilt package `oauth-state-store-<platform>` that
// npm installs as an optional dependency. Nothing is downloaded or built at install or load
// time; when nothing fits, the error says what to do (lib/platform.cjs).
const path = require('node:path');
const { detectLibc, loadAddon } = require('./platform.cjs');

module.exports = loadAddon({
  root: path.join(__dirname, '..'),
  platform: process.platform,
  arch: process.arch,
  libc: detectLibc(),
}).addon;

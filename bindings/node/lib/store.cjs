'use strict';
// Store: the core's operations as Promises. Every call runs in Rust, off the event loop.
const native = require('./native.cjs');
const { call } = require('./errors.cjs');

const TOKEN = Symbol('oauth-state-store.internal');

class Store {
  #native;
  #path;

  /** Use `Store.open(path, options)`. */
  constructor(token, handle, path) {
    if (token !== TOKEN) throw new TypeError('use Store.open(path, options)');
    this.#native = handle;
    this.#path = path;
  }

  static async open(path, options = {}) {
    const handle = await call(() => native.Store.open(path, options));
    return new Store(TOKEN, handle, require('node:path').resolve(String(path)));
  }

  /** The store file's absolute path. */
  get path() {
    return this.#path;
  }

  /** @internal the addon's handle, for attach(). */
  static handleOf(store) {
    if (!(store instanceof Store)) throw new TypeError('expected a Store from Store.open()');
    return store.#native;
  }

  get storeId() {
    return this.#native.storeId;
  }

  begin(options) {
    return call(() => this.#native.begin(options));
  }

  saveCodeVerifier(serverId, clientId, verifier) {
    return call(() => this.#native.saveCodeVerifier(serverId, clientId ?? null, verifier));
  }

  /**
   * Binds the saved verifier to the URL's state. `options` is `{ issuer, requireIssuer,
   * discovery }` (each optional), or the issuer alone as a string.
   */
  promote(serverId, clientId, authorizationUrl, options) {
    const { issuer, requireIssuer, discovery } =
      typeof options === 'string' ? { issuer: options } : (options ?? {});
    return call(() =>
      this.#native.promote(serverId, clientId ?? null, String(authorizationUrl), {
        issuer: issuer ?? undefined,
        requireIssuer: requireIssuer ?? undefined,
        discovery: discovery ?? undefined,
      }),
    );
  }

  check(state) {
    return call(() => this.#native.check(state));
  }

  consume(state) {
    return call(() => this.#native.consume(state));
  }

  consumeFor(state, serverId) {
    return call(() => this.#native.consumeFor(state, serverId));
  }

  complete(state, code) {
    return call(() => this.#native.complete(state, code));
  }

  reject(state, error, description) {
    return call(() => this.#native.reject(state, error, description ?? null));
  }

  pendingVerifier(serverId, clientId) {
    return call(() => this.#native.pendingVerifier(serverId, clientId ?? null));
  }

  invalidate(serverId, clientId, scope = 'live') {
    return call(() => this.#native.invalidate(serverId, clientId ?? null, scope));
  }

  sweep() {
    return call(() => this.#native.sweep());
  }

  stats() {
    return call(() => this.#native.stats());
  }
}

module.exports = { Store, generateState: native.generateState };

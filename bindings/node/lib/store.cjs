'use strict';
// Store: the core's operations as Promises. Every call runs in Rust, off the event loop. Each
// argument's type is checked first (lib/validate.cjs): a wrong one rejects with INVALID_INPUT
// naming it, and never reaches N-API, whose messages would print the value.
const native = require('./native.cjs');
const { call } = require('./errors.cjs');
const v = require('./validate.cjs');
const { Flow, ConsumedFlow } = require('./values.cjs');

const TOKEN = Symbol('oauth-state-store.internal');

const OPEN_FIELDS = ['ttlSeconds', 'busyTimeoutMs', 'poolSize', 'durability', 'lockWait', 'relaxedFileChecks', 'createIfMissing', 'readOnly'];
const BEGIN_FIELDS = ['serverId', 'clientId', 'redirectUri', 'issuer', 'resource', 'scope', 'ttlSeconds'];
const PROMOTE_FIELDS = ['issuer', 'requireIssuer', 'discovery'];
const U32 = 0xffffffff;

function openOptions(options) {
  const o = v.options('options', options, OPEN_FIELDS);
  return {
    ttlSeconds: v.optionalInteger('ttlSeconds', o.ttlSeconds, 0, U32),
    busyTimeoutMs: v.optionalInteger('busyTimeoutMs', o.busyTimeoutMs, 0, U32),
    poolSize: v.optionalInteger('poolSize', o.poolSize, 0, U32),
    durability: v.optionalChoice('durability', o.durability, ['normal', 'full']),
    lockWait: v.optionalChoice('lockWait', o.lockWait, ['backoff', 'aging']),
    relaxedFileChecks: v.optionalBoolean('relaxedFileChecks', o.relaxedFileChecks),
    createIfMissing: v.optionalBoolean('createIfMissing', o.createIfMissing),
    readOnly: v.optionalBoolean('readOnly', o.readOnly),
  };
}

function beginOptions(options) {
  if (options === undefined || options === null) throw v.invalid('options', 'an options object with serverId', options);
  const o = v.options('options', options, BEGIN_FIELDS);
  return {
    serverId: v.string('serverId', o.serverId),
    clientId: v.optionalString('clientId', o.clientId),
    redirectUri: v.optionalString('redirectUri', o.redirectUri),
    issuer: v.optionalString('issuer', o.issuer),
    resource: v.optionalString('resource', o.resource),
    scope: v.optionalString('scope', o.scope),
    ttlSeconds: v.optionalInteger('ttlSeconds', o.ttlSeconds, 0, U32),
  };
}

/** A URL as a string: a string, or a URL object. */
function urlText(field, value) {
  if (value instanceof URL) return value.href;
  return v.string(field, value);
}

class Store {
  #native;

  /** Use `Store.open(path, options)` or `Store.openDefault(options)`. */
  constructor(token, handle) {
    if (token !== TOKEN) throw new TypeError('use Store.open(path, options)');
    this.#native = handle;
  }

  static async open(path, options) {
    const handle = await call(() => native.Store.open(v.string('path', path), openOptions(options)));
    return new Store(TOKEN, handle);
  }

  /**
   * The store at the command line's default path (`$OAUTH_STATE_DB`, else
   * `$XDG_STATE_HOME/oauth-state-store/flows.db`, else
   * `~/.local/state/oauth-state-store/flows.db`), its missing directory created 0700.
   */
  static async openDefault(options) {
    const handle = await call(() => native.Store.openDefault(openOptions(options)));
    return new Store(TOKEN, handle);
  }

  /** The store file's absolute path. */
  get path() {
    const file = this.#native.path;
    return typeof file === 'string' ? require('node:path').resolve(file) : undefined;
  }

  /** @internal the addon's handle, for attach(). */
  static handleOf(store) {
    if (!(store instanceof Store)) throw v.invalid('store', 'a Store from Store.open()', store);
    return store.#native;
  }

  get storeId() {
    return this.#native.storeId;
  }

  async begin(options) {
    return new Flow(await call(() => this.#native.begin(beginOptions(options))));
  }

  saveCodeVerifier(serverId, clientId, verifier) {
    return call(() =>
      this.#native.saveCodeVerifier(
        v.string('serverId', serverId),
        v.optionalString('clientId', clientId) ?? null,
        v.string('verifier', verifier),
      ),
    );
  }

  /**
   * Binds the saved verifier to the URL's state. `options` is `{ issuer, requireIssuer,
   * discovery }` (each optional), or the issuer alone as a string.
   */
  promote(serverId, clientId, authorizationUrl, options) {
    return call(() => {
      const o = typeof options === 'string' ? { issuer: options } : v.options('options', options, PROMOTE_FIELDS);
      return this.#native.promote(
        v.string('serverId', serverId),
        v.optionalString('clientId', clientId) ?? null,
        urlText('authorizationUrl', authorizationUrl),
        {
          issuer: v.optionalString('issuer', o.issuer),
          requireIssuer: v.optionalBoolean('requireIssuer', o.requireIssuer),
          discovery: v.optionalString('discovery', o.discovery),
        },
      );
    });
  }

  check(state) {
    return call(() => this.#native.check(v.string('state', state)));
  }

  async consume(state) {
    return new ConsumedFlow(await call(() => this.#native.consume(v.string('state', state))));
  }

  async consumeFor(state, serverId) {
    return new ConsumedFlow(
      await call(() => this.#native.consumeFor(v.string('state', state), v.string('serverId', serverId))),
    );
  }

  /**
   * The finish without the state: consumes the one flow of this server and client in
   * progress, exactly once across processes; several are AMBIGUOUS_PENDING_VERIFIER.
   */
  async consumePending(serverId, clientId) {
    return new ConsumedFlow(
      await call(() =>
        this.#native.consumePending(v.string('serverId', serverId), v.optionalString('clientId', clientId) ?? null),
      ),
    );
  }

  /** The discovery state of the flow consumePending would take now (not consumed). */
  async pendingDiscovery(serverId, clientId) {
    const text = await call(() =>
      this.#native.pendingDiscovery(v.string('serverId', serverId), v.optionalString('clientId', clientId) ?? null),
    );
    return text ?? undefined;
  }

  complete(state, code) {
    return call(() => this.#native.complete(v.string('state', state), v.string('code', code)));
  }

  reject(state, error, description) {
    return call(() =>
      this.#native.reject(
        v.string('state', state),
        v.string('error', error),
        v.optionalString('description', description) ?? null,
      ),
    );
  }

  pendingVerifier(serverId, clientId) {
    return call(() =>
      this.#native.pendingVerifier(v.string('serverId', serverId), v.optionalString('clientId', clientId) ?? null),
    );
  }

  invalidate(serverId, clientId, scope = 'live') {
    return call(() =>
      this.#native.invalidate(
        v.string('serverId', serverId),
        v.optionalString('clientId', clientId) ?? null,
        v.optionalChoice('scope', scope, ['unbound', 'live', 'all']),
      ),
    );
  }

  sweep() {
    return call(() => this.#native.sweep());
  }

  stats() {
    return call(() => this.#native.stats());
  }
}

module.exports = { Store, generateState: native.generateState };

'use strict';
// Store: the core's operations as Promises. Every call runs in Rust, off the event loop. Each
// argument's type is checked first (lib/validate.cjs): a wrong one rejects with INVALID_INPUT
// naming it, and never reaches N-API, whose messages would print the value.
const native = require('./native.cjs');
const { call } = require('./errors.cjs');
const v = require('./validate.cjs');
const { Flow, ConsumedFlow } = require('./values.cjs');
const { RefreshLease, tokenInput, wrapSet } = require('./tokens.cjs');

const TOKEN = Symbol('oauth-state-store.internal');

const OPEN_FIELDS = ['ttlSeconds', 'busyTimeoutMs', 'poolSize', 'durability', 'lockWait', 'relaxedFileChecks', 'createIfMissing', 'readOnly'];
const BEGIN_FIELDS = ['serverId', 'clientId', 'redirectUri', 'issuer', 'resource', 'scope', 'ttlSeconds'];
const PROMOTE_FIELDS = ['issuer', 'requireIssuer', 'discovery'];
const REFRESH_FIELDS = ['leaseMs', 'owner'];
const U32 = 0xffffffff;

function refreshOptions(options) {
  const o = v.options('options', options, REFRESH_FIELDS);
  return {
    leaseMs: v.optionalInteger('leaseMs', o.leaseMs, 1000, 600000),
    owner: v.optionalString('owner', o.owner),
  };
}

/** A generation number (an integer >= 0). */
function generation(field, value) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw v.invalid(field, 'a generation number (an integer >= 0)', typeof value === 'number' ? 0 : value);
  }
  return value;
}

/** What rejectRefresh / rejectTokens resolve with. */
function rejected(raw) {
  return { outcome: raw.outcome, set: wrapSet(raw.set) };
}

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

  // Token sets and their single-flight refresh (docs/refresh.md). A token response is the
  // object a token endpoint answers: { access_token, token_type, refresh_token, expires_in,
  // scope, issuer, ...other members }.

  /** Saves a token response as the set of this server and client: { outcome, generation }. */
  saveTokens(serverId, clientId, tokens) {
    return call(() =>
      this.#native.saveTokens(v.string('serverId', serverId), v.string('clientId', clientId), tokenInput('tokens', tokens)),
    );
  }

  /** The live token set of this server and client, or undefined. */
  async tokens(serverId, clientId) {
    return wrapSet(await call(() => this.#native.tokens(v.string('serverId', serverId), v.string('clientId', clientId))));
  }

  /** Deletes the token sets of a server (of one client, when given); resolves with how many. */
  forgetTokens(serverId, clientId) {
    return call(() =>
      this.#native.forgetTokens(v.string('serverId', serverId), v.optionalString('clientId', clientId) ?? null),
    );
  }

  /** Every token set (of one server, when given), described without any token. */
  async listTokenSets(serverId) {
    const sets = await call(() => this.#native.listTokenSets(v.optionalString('serverId', serverId) ?? null));
    return sets.map((s) => Object.fromEntries(Object.entries(s).filter(([, value]) => value !== null && value !== undefined)));
  }

  /**
   * Begins a refresh against the generation the caller saw (null: whatever is stored), without
   * waiting: { kind: 'newer', set } (send nothing), { kind: 'lease', lease } (send
   * lease.refreshToken(), then finish, reject or release it) or { kind: 'wait', leaseLeftMs,
   * seen } (another process refreshes: try again with `seen`).
   */
  async tryBeginRefresh(serverId, clientId, seen, options) {
    const raw = await call(() =>
      this.#native.tryBeginRefresh(
        v.string('serverId', serverId),
        v.string('clientId', clientId),
        seen === null || seen === undefined ? null : generation('seen', seen),
        refreshOptions(options),
      ),
    );
    if (raw.kind === 'newer') return { kind: 'newer', set: wrapSet(raw.set) };
    if (raw.kind === 'lease') return { kind: 'lease', lease: new RefreshLease(raw.lease) };
    return { kind: 'wait', leaseLeftMs: raw.leaseLeftMs, seen: raw.seen ?? undefined };
  }

  /** Saves the refresh's response if the leased generation is still stored: { outcome, set }. */
  async finishRefresh(lease, tokens) {
    const raw = await call(() => this.#native.finishRefresh(RefreshLease.handleOf(lease), tokenInput('tokens', tokens)));
    return { outcome: raw.outcome, set: wrapSet(raw.set) };
  }

  /** The server refused the lease's refresh token: { outcome: 'revoked' | 'stale' | 'gone', set }. */
  async rejectRefresh(lease, error) {
    return rejected(await call(() => this.#native.rejectRefresh(RefreshLease.handleOf(lease), v.string('error', error))));
  }

  /** A refused refresh token without a lease: revokes the set only if `generation` is still stored. */
  async rejectTokens(serverId, clientId, gen, error) {
    return rejected(
      await call(() =>
        this.#native.rejectTokens(
          v.string('serverId', serverId),
          v.string('clientId', clientId),
          generation('generation', gen),
          v.string('error', error),
        ),
      ),
    );
  }

  /** Gives the lease back without saving (a network error, a 5xx, a timeout). */
  async releaseRefresh(lease) {
    await call(() => this.#native.releaseRefresh(RefreshLease.handleOf(lease)));
  }

  sweep() {
    return call(() => this.#native.sweep());
  }

  stats() {
    return call(() => this.#native.stats());
  }
}

module.exports = { Store, generateState: native.generateState };

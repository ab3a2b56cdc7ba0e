'use strict';
// Token sets and refresh leases as JavaScript sees them. The access token, the refresh token
// and `extra` are read as properties (`set.accessToken`), but every way of printing a set shows
// `[redacted]` in their place (util.inspect, console.log, JSON.stringify), as for flows
// (lib/values.cjs). A lease's refresh token is read through a method, never a property.
const util = require('node:util');
const v = require('./validate.cjs');
const { REDACTED, printable } = require('./values.cjs');

const NATIVE = Symbol('oauth-state-store.lease');

/** The members of a token response the store keeps in their own columns. */
const COLUMNS = ['access_token', 'token_type', 'refresh_token', 'expires_in', 'scope', 'issuer'];

/**
 * A token response (`{ access_token, token_type, refresh_token, expires_in, scope, issuer,
 * ...other members }`, as a token endpoint answers and the SDKs keep it) as the addon takes
 * it: the other members (an `id_token`, vendor fields) travel as JSON text in `extra`.
 */
function tokenInput(field, tokens) {
  if (tokens === null || typeof tokens !== 'object' || Array.isArray(tokens)) {
    throw v.invalid(field, 'a token response object', tokens);
  }
  let expiresIn = tokens.expires_in;
  // Some servers send the lifetime as a numeric string.
  if (typeof expiresIn === 'string' && /^\d{1,10}$/.test(expiresIn)) expiresIn = Number(expiresIn);
  if (expiresIn !== undefined && expiresIn !== null
      && (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn < 0)) {
    throw v.invalid('expires_in', 'a number of seconds >= 0', typeof expiresIn === 'number' ? 0 : expiresIn);
  }
  const other = {};
  for (const [key, value] of Object.entries(tokens)) {
    if (!COLUMNS.includes(key) && value !== undefined) other[key] = value;
  }
  const extra = Object.keys(other).length > 0 ? JSON.stringify(other) : undefined;
  return {
    accessToken: v.string('access_token', tokens.access_token),
    tokenType: v.string('token_type', tokens.token_type),
    refreshToken: v.optionalString('refresh_token', tokens.refresh_token),
    expiresIn: expiresIn ?? undefined,
    scope: v.optionalString('scope', tokens.scope),
    issuer: v.optionalString('issuer', tokens.issuer),
    extra,
  };
}

/** A stored token set, as read: the newest tokens of one server and client. */
class TokenSet {
  constructor(raw) {
    for (const [name, value] of Object.entries({
      accessToken: raw.accessToken,
      refreshToken: raw.refreshToken ?? undefined,
      extra: raw.extra ?? undefined,
    })) {
      Object.defineProperty(this, name, { get: () => value, enumerable: false, configurable: false });
    }
    this.serverId = raw.serverId;
    this.clientId = raw.clientId;
    this.generation = raw.generation;
    this.tokenType = raw.tokenType;
    this.scope = raw.scope ?? undefined;
    this.issuer = raw.issuer ?? undefined;
    this.receivedAt = raw.receivedAt;
    this.expiresAt = raw.expiresAt ?? undefined;
    this.expiresInMs = raw.expiresInMs ?? undefined;
    Object.freeze(this);
  }

  /**
   * The set as an OAuth token response (what the MCP SDKs' `tokens()` returns): a plain
   * object holding the tokens, which is the caller's to keep safe from then on. `expires_in`
   * is what was left when the set was read, in whole seconds.
   */
  toOAuthTokens() {
    let other = {};
    if (this.extra !== undefined) {
      try {
        const parsed = JSON.parse(this.extra);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) other = parsed;
      } catch {
        // extra saved by another client of the store, not JSON: not a member of ours
      }
    }
    const tokens = { ...other, access_token: this.accessToken, token_type: this.tokenType };
    if (this.refreshToken !== undefined) tokens.refresh_token = this.refreshToken;
    if (this.expiresInMs !== undefined) tokens.expires_in = Math.floor(this.expiresInMs / 1000);
    if (this.scope !== undefined) tokens.scope = this.scope;
    if (this.issuer !== undefined) tokens.issuer = this.issuer;
    return tokens;
  }

  /** The redacted view. */
  toJSON() {
    return {
      serverId: this.serverId,
      clientId: this.clientId,
      generation: this.generation,
      accessToken: REDACTED,
      refreshToken: this.refreshToken === undefined ? undefined : REDACTED,
      tokenType: this.tokenType,
      scope: this.scope,
      issuer: this.issuer,
      extra: this.extra === undefined ? undefined : REDACTED,
      receivedAt: this.receivedAt,
      expiresAt: this.expiresAt,
      expiresInMs: this.expiresInMs,
    };
  }

  [util.inspect.custom](depth, options, inspect) {
    return printable('TokenSet', this.toJSON(), depth, options, inspect);
  }

  toString() {
    return '[object TokenSet]';
  }
}

/**
 * The right and the duty to refresh one generation of a set. End it once: `finishRefresh`,
 * `rejectRefresh` or `releaseRefresh`.
 */
class RefreshLease {
  constructor(handle) {
    Object.defineProperty(this, NATIVE, { value: handle, enumerable: false });
    this.generation = handle.generation;
    this.tookOver = handle.tookOver;
    this.serverId = handle.serverId;
    this.clientId = handle.clientId;
    Object.freeze(this);
  }

  /** The refresh token to send (the one stored with the leased generation); undefined once ended. */
  refreshToken() {
    return this[NATIVE].refreshToken() ?? undefined;
  }

  /** Milliseconds left until the refresh request must have ended. */
  deadlineInMs() {
    return this[NATIVE].deadlineInMs();
  }

  toJSON() {
    return { serverId: this.serverId, clientId: this.clientId, generation: this.generation, tookOver: this.tookOver };
  }

  [util.inspect.custom](depth, options, inspect) {
    return printable('RefreshLease', this.toJSON(), depth, options, inspect);
  }

  toString() {
    return '[object RefreshLease]';
  }

  /** @internal the addon's lease. */
  static handleOf(lease) {
    if (!(lease instanceof RefreshLease)) throw v.invalid('lease', 'a RefreshLease from tryBeginRefresh()', lease);
    return lease[NATIVE];
  }
}

/** The addon's answer with its sets and lease wrapped. */
function wrapSet(raw) {
  return raw === null || raw === undefined ? undefined : new TokenSet(raw);
}

module.exports = { TokenSet, RefreshLease, tokenInput, wrapSet };

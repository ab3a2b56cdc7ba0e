'use strict';
// withSharedTokens: the token half of an MCP TypeScript SDK OAuthClientProvider (v1 and v2)
// kept in the shared store, with the SDK's refresh made single-flight across processes.
//
// Neither SDK has a refresh hook on the provider: auth() reads tokens(), sends the
// refresh_token grant through the `fetchFn` it was given (the transport's `fetch` option),
// and saves what comes back. So the refresh is arbitrated in that fetch: the wrapper's `fetch`
// recognises the refresh request, begins a refresh in the store against the generation this
// process saw, and then either answers with the newer set another process saved (a token
// response made here: nothing is sent), waits while another process refreshes, or takes the
// lease and sends the request itself, with the refresh token stored with the leased generation.
// The response is saved before the SDK sees it (compare-and-swap); invalid_grant revokes the
// set only if the refused generation is still the stored one.
//
// Which generation "this process saw": the one whose access token the resource server refused
// (the 401 that made the SDK call auth(), seen by this same fetch), else the oldest one tokens()
// handed out since this process's last refresh, else the one whose refresh token the SDK
// presents. A process that saw generation N therefore gets N+1 without a request, even when
// its tokens() call inside auth() already read N+1. A newer set whose access token has already
// expired is refreshed in its turn (its generation is then the one seen).
const { Store } = require('./store.cjs');
const { overlay } = require('./shared-flows.cjs');
const { StoreError, ErrorCode } = require('./errors.cjs');
const v = require('./validate.cjs');

/** Tokens (access and refresh) this wrapper remembers handing out, with their generation. */
const MAX_HANDED = 16;
/** OAuth errors that refuse the refresh token or the client: the refusal rule applies. */
const REFUSED = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);
/** Store errors that mean "sign in again": answered as invalid_grant so the SDK starts a login. */
const SIGN_IN = new Set([ErrorCode.NO_TOKENS, ErrorCode.TOKENS_REVOKED, ErrorCode.NO_REFRESH_TOKEN]);
const FIRST_PAUSE_MS = 5;
const POLL_MAX_MS = 25;
const DEFAULT_WAIT_MS = 60_000;

// In-process wake-ups: a refresh that ends in this process wakes this process's waiters on the
// same set at once (other processes see the change at their next look).
const sleepers = new Map();

function wake(key) {
  const set = sleepers.get(key);
  if (!set) return;
  sleepers.delete(key);
  for (const resolve of set) resolve();
}

/** Sleeps `ms`, or until a refresh of `key` ends in this process, or `signal` aborts. */
function pause(key, ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let timer;
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      sleepers.get(key)?.delete(done);
      resolve();
    };
    const aborted = () => {
      done();
      reject(signal.reason);
    };
    timer = setTimeout(done, ms);
    signal?.addEventListener('abort', aborted, { once: true });
    if (!sleepers.has(key)) sleepers.set(key, new Set());
    sleepers.get(key).add(done);
  });
}

/** The form parameters of a refresh_token grant request, or undefined for any other request. */
function refreshParams(input, init) {
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  if (String(method).toUpperCase() !== 'POST') return undefined;
  const body = init?.body;
  let params;
  if (body instanceof URLSearchParams) params = new URLSearchParams(body);
  else if (typeof body === 'string') params = new URLSearchParams(body);
  else return undefined;
  if (params.get('grant_type') !== 'refresh_token' || !params.get('refresh_token')) return undefined;
  return params;
}

/** The access token a request carried (`Authorization: Bearer …` or `DPoP …`). */
function presentedAccessToken(input, init) {
  let header;
  try {
    header = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get('authorization');
  } catch {
    return undefined;
  }
  const match = /^(?:Bearer|DPoP)\s+(\S+)$/i.exec(header ?? '');
  return match ? match[1] : undefined;
}

/** A token endpoint's answer, made from a stored set: the SDK saves exactly these tokens. */
function tokenResponse(set) {
  const { issuer: _issuer, ...tokens } = set.toOAuthTokens();
  return new Response(JSON.stringify(tokens), {
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/** An OAuth error response (RFC 6749, section 5.2), for the SDK's own error handling. */
function oauthError(error, description) {
  return new Response(JSON.stringify({ error, error_description: description }), {
    status: 400,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/** The same response with its body already read (the wrapper read it to save it). */
function again(res, text) {
  return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function withSharedTokens(provider, options) {
  if (!provider || typeof provider !== 'object') {
    throw v.invalid('provider', 'an OAuthClientProvider object', provider);
  }
  const o = v.options('options', options, ['store', 'serverId', 'clientId', 'fetch', 'leaseMs', 'waitMs', 'owner']);
  if (!(o.store instanceof Store)) throw v.invalid('store', 'a Store from Store.open()', o.store);
  const store = o.store;
  const serverId = v.string('serverId', o.serverId);
  const fixedClient = v.optionalString('clientId', o.clientId);
  if (o.fetch !== undefined && typeof o.fetch !== 'function') throw v.invalid('fetch', 'a fetch function', o.fetch);
  const baseFetch = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const waitMs = v.optionalInteger('waitMs', o.waitMs, 0, 3_600_000) ?? DEFAULT_WAIT_MS;
  const leaseOptions = {
    leaseMs: v.optionalInteger('leaseMs', o.leaseMs, 1000, 600_000),
    owner: v.optionalString('owner', o.owner),
  };

  // What this wrapper knows: the generation of each token it handed out (newest last), the
  // newest generation whose access token a server refused (a 401), the generation whose
  // refresh token the authorization server refused, and the last generation handed out.
  // `since`: the oldest generation tokens() handed out since this process's last refresh.
  const memory = {
    handed: new Map(),
    refused: undefined,
    refusedRefresh: undefined,
    lastHanded: undefined,
    since: undefined,
  };

  function remember(set) {
    for (const token of [set.accessToken, set.refreshToken]) {
      if (token === undefined) continue;
      memory.handed.delete(token);
      memory.handed.set(token, set.generation);
    }
    while (memory.handed.size > MAX_HANDED) memory.handed.delete(memory.handed.keys().next().value);
    memory.lastHanded = set.generation;
  }

  async function clientId() {
    if (fixedClient !== undefined) return fixedClient;
    const info = typeof provider.clientInformation === 'function' ? await provider.clientInformation() : undefined;
    return typeof info?.client_id === 'string' ? info.client_id : undefined;
  }

  const keyOf = (client) => `${store.storeId}\n${serverId}\n${client}`;

  /** The generation of tokens the SDK names (@ai-sdk/mcp passes the refused ones). */
  function generationOf(tokens) {
    if (!tokens || typeof tokens !== 'object') return undefined;
    return memory.handed.get(tokens.refresh_token) ?? memory.handed.get(tokens.access_token);
  }

  /** Sends the refresh as the lease holder and settles the lease by the answer. */
  async function sendLeased(client, lease, input, init, params) {
    const key = keyOf(client);
    const body = new URLSearchParams(params);
    // The refresh token stored with the leased generation: never one a save replaced.
    body.set('refresh_token', lease.refreshToken());
    const deadline = AbortSignal.timeout(Math.max(1, Math.floor(lease.deadlineInMs())));
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    let res;
    let text;
    try {
      res = await baseFetch(input, { ...init, body, signal });
      text = await res.text();
    } catch (err) {
      // Nothing known about the token: give the lease back for the next caller.
      await store.releaseRefresh(lease);
      wake(key);
      throw err;
    }
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const isObject = json !== null && typeof json === 'object' && !Array.isArray(json);
    if (res.ok && isObject && typeof json.access_token === 'string' && typeof json.token_type === 'string') {
      let finished;
      try {
        finished = await store.finishRefresh(lease, json);
      } catch (err) {
        // A response the store refused before the lease was used (a malformed field).
        if (lease.refreshToken() !== undefined) await store.releaseRefresh(lease);
        wake(key);
        throw err;
      }
      wake(key);
      remember(finished.set);
      return finished.outcome === 'saved' ? again(res, text) : tokenResponse(finished.set);
    }
    if (res.status >= 400 && res.status < 500 && isObject && REFUSED.has(json.error)) {
      const rejected = await store.rejectRefresh(lease, json.error);
      wake(key);
      if (rejected.outcome === 'stale') {
        // A newer set was saved meanwhile (a login): it is the answer.
        remember(rejected.set);
        return tokenResponse(rejected.set);
      }
      memory.refusedRefresh = { generation: lease.generation, error: json.error };
      return again(res, text);
    }
    await store.releaseRefresh(lease);
    wake(key);
    return again(res, text);
  }

  /** The SDK's refresh request: answered from the store, or sent once for every process. */
  async function refresh(input, init, params) {
    const client = await clientId();
    if (client === undefined) return baseFetch(input, init);
    const presented = params.get('refresh_token');
    let known = memory.handed.get(presented);
    if (known === undefined) {
      const stored = await store.tokens(serverId, client);
      // A refresh token the store never held: a request of someone else's, passed on untouched.
      if (stored?.refreshToken !== presented) return baseFetch(input, init);
      known = stored.generation;
    }
    let seen = Math.min(memory.refused ?? memory.since ?? known, known);
    memory.refused = undefined;
    memory.since = undefined;
    const key = keyOf(client);
    const started = Date.now();
    let wait = FIRST_PAUSE_MS;
    for (;;) {
      let begun;
      try {
        begun = await store.tryBeginRefresh(serverId, client, seen, leaseOptions);
      } catch (err) {
        if (err instanceof StoreError && SIGN_IN.has(err.code)) {
          return oauthError('invalid_grant', 'the shared tokens are gone; sign in again');
        }
        throw err;
      }
      if (begun.kind === 'newer') {
        if (begun.set.expiresInMs === 0 && begun.set.refreshToken !== undefined) {
          // Newer than what this process saw, but expired too: refresh it (once for all).
          seen = begun.set.generation;
          continue;
        }
        remember(begun.set);
        return tokenResponse(begun.set);
      }
      if (begun.kind === 'lease') return sendLeased(client, begun.lease, input, init, params);
      seen = begun.seen ?? seen;
      const waited = Date.now() - started;
      if (waited >= waitMs) {
        throw new StoreError(
          ErrorCode.REFRESH_WAIT_TIMEOUT,
          `another process kept refreshing these tokens for longer than ${waitMs} ms`,
          { waitedMs: waited },
        );
      }
      await pause(key, Math.max(1, Math.min(wait, begun.leaseLeftMs, waitMs - waited)), init?.signal);
      wait = Math.min(wait * 1.5, POLL_MAX_MS);
    }
  }

  const half = {
    tokens: async () => {
      const client = await clientId();
      if (client === undefined) return undefined;
      const set = await store.tokens(serverId, client);
      if (!set) return undefined;
      remember(set);
      memory.since = Math.min(memory.since ?? set.generation, set.generation);
      return set.toOAuthTokens();
    },
    saveTokens: async (tokens) => {
      const client = await clientId();
      if (client === undefined) {
        throw new StoreError(ErrorCode.INVALID_INPUT, 'invalid clientId: tokens cannot be saved before the client is known', {
          field: 'clientId',
        });
      }
      // `stale` (a refresh token the store already replaced) writes nothing: the newer set stays.
      await store.saveTokens(serverId, client, tokens);
    },
    invalidateCredentials: async (scope, ...rest) => {
      v.string('scope', scope);
      if (scope === 'tokens' || scope === 'all') {
        const client = await clientId();
        const refused = memory.refusedRefresh;
        memory.refusedRefresh = undefined;
        // The generation the SDK gives up: the one whose refresh was refused here, else the
        // one it names, else the one last handed out. The store revokes it only if it is still
        // the stored generation: a newer set saved by another process is never touched.
        const generation = refused?.generation ?? generationOf(rest[0]?.tokens) ?? memory.lastHanded;
        if (client !== undefined && generation !== undefined) {
          const reason = refused?.error ?? (scope === 'all' ? 'invalid_client' : 'invalid_grant');
          await store.rejectTokens(serverId, client, generation, reason);
          wake(keyOf(client));
        }
      }
      if (typeof provider.invalidateCredentials === 'function') await provider.invalidateCredentials(scope, ...rest);
    },
    /**
     * The fetch to give the SDK's transport (`fetch` option) or auth() (`fetchFn`): every
     * request passes through, but a refresh_token grant for these tokens is sent at most once
     * for all processes.
     */
    fetch: async (input, init) => {
      const params = refreshParams(input, init);
      if (params) return refresh(input, init, params);
      const res = await baseFetch(input, init);
      if (res.status === 401) {
        const generation = memory.handed.get(presentedAccessToken(input, init));
        if (generation !== undefined) memory.refused = Math.max(memory.refused ?? 0, generation);
      }
      return res;
    },
  };
  return overlay(provider, half);
}

module.exports = { withSharedTokens };

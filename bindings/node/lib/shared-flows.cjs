'use strict';
// withSharedFlows: the flow half of an MCP TypeScript SDK OAuthClientProvider (v1, v2, and
// @ai-sdk/mcp's), kept in the shared store. Tokens and client registration stay with the
// user's provider. The rules (binding, exactly-once, 0/1/many) are the core's; what lives here
// is which flow a call of the SDK means, since the SDK does not always say.
//
// Which flow a finish uses (README, "Which flow a finish takes"):
// 1. A callback handed over by state: forCallback / waitForCallback consume that flow, and the
//    provider (the app's own, and the view they return) finishes it.
// 2. Otherwise codeVerifier() (the SDK asks for it right before the token request, with only
//    the code in hand: `transport.finishAuth(code)`, `auth(provider, { authorizationCode })`)
//    consumes a flow then and there, exactly once across processes: the one this provider
//    began in this process that is still in progress, else (a process that began none) the
//    one flow of this server and client in progress in the store. Several in progress: the
//    code could belong to any, so AMBIGUOUS_PENDING_VERIFIER and nothing is consumed.
// 3. The flow a finish used is served again to the SDK's retry of the token request (the SDK
//    calls invalidateCredentials() before it retries), and to nothing else: the next finish
//    takes the next flow, and a new login (state()) forgets it.
const { Store, generateState } = require('./store.cjs');
const { LoopbackCallback } = require('./callback.cjs');
const { StoreError, ErrorCode } = require('./errors.cjs');
const v = require('./validate.cjs');

/** How many of its own flows a provider remembers (the oldest are forgotten first). */
const MAX_BEGUN = 16;
const LIVE = new Set(['pending', 'completed']);
const NOT_LIVE = new Set([
  ErrorCode.UNKNOWN_STATE,
  ErrorCode.EXPIRED,
  ErrorCode.ALREADY_CONSUMED,
  ErrorCode.FLOW_ENDED,
  ErrorCode.AUTHORIZATION_FAILED,
]);

/** `provider` with `half` laid over it: own methods of `half` win, the rest is the provider's. */
function overlay(provider, half) {
  return new Proxy(provider, {
    get(target, prop) {
      if (Object.hasOwn(half, prop)) return half[prop];
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    has(target, prop) {
      return Object.hasOwn(half, prop) || Reflect.has(target, prop);
    },
  });
}

/**
 * The discovery state a flow kept (the JSON this wrapper wrote at promote). Text that is not
 * JSON was written by another client of the file: the SDK then discovers afresh.
 */
function parseDiscovery(text) {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The state in an authorization URL, if it has one. */
function stateOf(url) {
  try {
    return new URL(url).searchParams.get('state') ?? undefined;
  } catch {
    return undefined;
  }
}

function withSharedFlows(provider, options) {
  if (!provider || typeof provider !== 'object' || typeof provider.redirectToAuthorization !== 'function') {
    throw v.invalid('provider', 'an OAuthClientProvider (an object with redirectToAuthorization)', provider);
  }
  const o = v.options('options', options, ['store', 'serverId', 'clientId']);
  if (!(o.store instanceof Store)) throw v.invalid('store', 'a Store from Store.open()', o.store);
  const store = o.store;
  const serverId = v.string('serverId', o.serverId);
  const client = v.optionalString('clientId', o.clientId) ?? null;

  // The provider's memory, shared by its views: the discovery state its begin leg saved, the
  // states of the flows it began (newest last), and the flow a finish is using.
  const memory = { discovery: undefined, begun: [], finishing: undefined };

  /** The flow a finish is using: `served` once its verifier went out, `retry` after that. */
  function finishing(flow) {
    memory.begun = memory.begun.filter((s) => s !== flow.state);
    memory.finishing = { flow, served: false, retry: false };
    return memory.finishing;
  }

  /** The finishing flow, if the call at hand may still use it. */
  function usable() {
    const f = memory.finishing;
    return f && (!f.served || f.retry) ? f : undefined;
  }

  /** This provider's own flows still in progress (the dead ones are forgotten). */
  async function ownLive() {
    const live = [];
    for (const state of [...memory.begun]) {
      try {
        if (LIVE.has((await store.check(state)).status)) {
          live.push(state);
          continue;
        }
      } catch (err) {
        if (!(err instanceof StoreError && NOT_LIVE.has(err.code))) throw err;
      }
      memory.begun = memory.begun.filter((s) => s !== state);
    }
    return live;
  }

  /** Rule 2: consumes the flow a finish without the state means. */
  async function takeFlow() {
    const own = await ownLive();
    if (own.length > 1) {
      throw new StoreError(
        ErrorCode.AMBIGUOUS_PENDING_VERIFIER,
        `${own.length} logins begun by this provider are in progress, so the flow this code ` +
          'belongs to is ambiguous; finish by the state (forCallback or waitForCallback)',
        { count: own.length },
      );
    }
    if (own.length === 1) {
      const consumed = await store.consumeFor(own[0], serverId);
      return { consumed, state: own[0] };
    }
    return { consumed: await store.consumePending(serverId, client), state: undefined };
  }

  async function invalidate(scope, rest) {
    v.string('scope', scope);
    if (scope === 'verifier' || scope === 'all') {
      await store.invalidate(serverId, client, 'live');
      memory.finishing = undefined;
      memory.begun = [];
    } else if (memory.finishing?.served) {
      // The SDK invalidates before it retries the token request with the same code.
      memory.finishing.retry = true;
    }
    if (scope === 'discovery' || scope === 'all') memory.discovery = undefined;
    if (scope !== 'verifier' && typeof provider.invalidateCredentials === 'function') {
      await provider.invalidateCredentials(scope, ...rest);
    }
  }

  // The begin leg's methods, the same on the provider and on its views.
  const begin = {
    state: async () => {
      memory.finishing = undefined; // a new login: the last finish is over
      return generateState();
    },
    saveCodeVerifier: async (verifier) => {
      await store.saveCodeVerifier(serverId, client, v.string('verifier', verifier));
    },
    redirectToAuthorization: async (url) => {
      const text = url instanceof URL ? url.href : v.string('authorizationUrl', url);
      // What discovery found goes on the flow, in the same transaction that binds it: the
      // issuer (RFC 8414), so a callback from another issuer is refused by whichever
      // listener receives it, and required in the callback when the server promises `iss`
      // (RFC 9207); and the discovery state itself, for the callback leg in any process.
      const metadata = memory.discovery?.authorizationServerMetadata;
      const issuer = typeof metadata?.issuer === 'string' ? metadata.issuer : undefined;
      await store.promote(serverId, client, text, {
        issuer,
        requireIssuer: issuer !== undefined && metadata?.authorization_response_iss_parameter_supported === true,
        discovery: memory.discovery === undefined ? undefined : JSON.stringify(memory.discovery),
      });
      const state = stateOf(text);
      if (state !== undefined) memory.begun = [...memory.begun, state].slice(-MAX_BEGUN);
      return provider.redirectToAuthorization(url);
    },
    saveDiscoveryState: async (state) => {
      memory.discovery = state;
    },
    invalidateCredentials: async (scope, ...rest) => invalidate(scope, rest),
  };

  /** A callback consumed by state: the provider and the returned view finish it. */
  function callbackView(consumed, state, authorizationCode, iss) {
    if (consumed.info.serverId !== serverId) {
      throw new StoreError(
        ErrorCode.SERVER_MISMATCH,
        'the callback belongs to a flow of another server than this provider; the flow was ended',
        { field: 'server_id' },
      );
    }
    const record = finishing({ ...flowOf(consumed), state });
    let discovery = parseDiscovery(consumed.discovery);
    const view = {
      ...begin,
      // This flow's verifier on every call (the SDK's retry after invalid_grant included).
      codeVerifier: async () => {
        record.served = true;
        record.retry = false;
        return consumed.verifier;
      },
      saveDiscoveryState: async (s) => {
        discovery = s;
      },
      discoveryState: async () => discovery,
    };
    Object.defineProperty(view, 'authorizationCode', { value: authorizationCode, enumerable: false });
    Object.defineProperty(view, 'iss', { value: iss, enumerable: false });
    return overlay(provider, view);
  }

  /** What a finish keeps of a consumed flow. */
  function flowOf(consumed) {
    return { verifier: consumed.verifier, discovery: consumed.discovery };
  }

  const outer = {
    ...begin,
    codeVerifier: async () => {
      const ready = usable();
      if (ready) {
        ready.served = true;
        ready.retry = false;
        return ready.flow.verifier;
      }
      memory.finishing = undefined;
      const { consumed, state } = await takeFlow();
      const record = finishing({ ...flowOf(consumed), state });
      record.served = true;
      return consumed.verifier;
    },
    discoveryState: async () => {
      const ready = usable();
      const kept = ready ? parseDiscovery(ready.flow.discovery) : undefined;
      if (kept !== undefined) return kept;
      if (memory.discovery !== undefined) return memory.discovery;
      // A process that began no login (the callback leg of another process's): the state kept
      // on the one flow in progress, which a finish without the state would take.
      try {
        return parseDiscovery(await store.pendingDiscovery(serverId, client));
      } catch (err) {
        const none = err instanceof StoreError
          && (err.code === ErrorCode.NO_PENDING_VERIFIER || err.code === ErrorCode.AMBIGUOUS_PENDING_VERIFIER);
        if (none) return undefined;
        throw err;
      }
    },
    /**
     * A callback arrived (`state`, `code`, `iss` from the redirect): consumes its flow once, in
     * any process, and returns the provider to finish `auth()` with; this provider finishes it
     * too (`transport.finishAuth(code)` on the app's own transport).
     */
    forCallback: async (params) => {
      const p = v.options('params', params, ['state', 'code', 'iss'], false);
      const state = v.string('state', p.state);
      const code = v.optionalString('code', p.code);
      const iss = v.optionalString('iss', p.iss);
      const consumed = await store.consumeFor(state, serverId);
      return callbackView(consumed, state, code ?? consumed.code, iss);
    },
    /**
     * Waits on a loopback callback (any process's listener) for `state`, then as forCallback,
     * with the `iss` the listener checked the callback's against.
     */
    waitForCallback: async (callback, state, waitOptions) => {
      if (!(callback instanceof LoopbackCallback)) throw v.invalid('callback', 'a LoopbackCallback from attach()', callback);
      v.string('state', state);
      const consumed = await callback.wait(state, waitOptions);
      return callbackView(consumed, state, consumed.code, consumed.iss);
    },
  };
  return overlay(provider, outer);
}

module.exports = { withSharedFlows, overlay };

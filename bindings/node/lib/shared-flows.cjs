'use strict';
// withSharedFlows: the flow half of an MCP TypeScript SDK OAuthClientProvider (v1 and v2), kept
// in the shared store. Tokens and client registration stay with the user's provider. Each method
// is one store call; the rules (binding, exactly-once, 0/1/many verifiers) are the core's.
const { Store, generateState } = require('./store.cjs');
const { LoopbackCallback } = require('./callback.cjs');
const { StoreError, ErrorCode } = require('./errors.cjs');

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

function withSharedFlows(provider, { store, serverId, clientId } = {}) {
  if (!provider || typeof provider.redirectToAuthorization !== 'function') {
    throw new TypeError('withSharedFlows: provider must be an OAuthClientProvider');
  }
  if (!(store instanceof Store)) throw new TypeError('withSharedFlows: store must come from Store.open()');
  if (typeof serverId !== 'string') throw new TypeError('withSharedFlows: serverId must be a string');
  const client = clientId ?? null;

  // `leg` is one leg's memory: the discovery state the SDK saved on it, and on a callback leg
  // the flow's consumed verifier (served again for the SDK's retry after invalid_grant).
  function flowHalf(leg) {
    const half = {
      state: async () => generateState(),
      saveCodeVerifier: async (verifier) => {
        await store.saveCodeVerifier(serverId, client, verifier);
      },
      redirectToAuthorization: async (url) => {
        // What discovery found goes on the flow, in the same transaction that binds it: the
        // issuer (RFC 8414), so a callback from another issuer is refused by whichever
        // listener receives it, and required in the callback when the server promises `iss`
        // (RFC 9207); and the discovery state itself, for the callback leg in any process.
        const metadata = leg.discovery?.authorizationServerMetadata;
        const issuer = typeof metadata?.issuer === 'string' ? metadata.issuer : undefined;
        await store.promote(serverId, client, String(url), {
          issuer,
          requireIssuer: issuer !== undefined && metadata?.authorization_response_iss_parameter_supported === true,
          discovery: leg.discovery === undefined ? undefined : JSON.stringify(leg.discovery),
        });
        return provider.redirectToAuthorization(url);
      },
      codeVerifier: async () => {
        if (leg.verifier !== undefined) return leg.verifier;
        return store.pendingVerifier(serverId, client);
      },
      saveDiscoveryState: async (state) => {
        leg.discovery = state;
      },
      discoveryState: async () => leg.discovery,
      invalidateCredentials: async (scope) => {
        if (scope === 'verifier' || scope === 'all') {
          await store.invalidate(serverId, client, 'live');
        }
        if (scope === 'discovery' || scope === 'all') leg.discovery = undefined;
        if (scope !== 'verifier' && typeof provider.invalidateCredentials === 'function') {
          await provider.invalidateCredentials(scope);
        }
      },
    };
    return half;
  }

  function callbackView(flow, authorizationCode, iss) {
    if (flow.info.serverId !== serverId) {
      throw new StoreError(
        ErrorCode.SERVER_MISMATCH,
        'the callback belongs to a flow of another server than this provider; the flow was ended',
        { field: 'server_id' },
      );
    }
    const half = flowHalf({ discovery: parseDiscovery(flow.discovery), verifier: flow.verifier });
    half.authorizationCode = authorizationCode;
    half.iss = iss;
    return overlay(provider, half);
  }

  const outer = flowHalf({ discovery: undefined, verifier: undefined });
  /**
   * A callback arrived (`state`, `code`, `iss` from the redirect): consumes its flow once, in
   * any process, and returns the provider to finish `auth()` with. Its `codeVerifier()` serves
   * that flow's verifier on every call; its `discoveryState()` is the begin leg's, kept on the
   * flow.
   */
  outer.forCallback = async ({ state, code, iss } = {}) => {
    const flow = await store.consumeFor(state, serverId);
    return callbackView(flow, code ?? flow.code ?? undefined, iss);
  };
  /**
   * Waits on a loopback callback (any process's listener) for `state`, then as forCallback,
   * with the `iss` the listener checked the callback's against.
   */
  outer.waitForCallback = async (callback, state, options) => {
    if (!(callback instanceof LoopbackCallback)) {
      throw new TypeError('waitForCallback: callback must come from attach()');
    }
    const flow = await callback.wait(state, options);
    return callbackView(flow, flow.code ?? undefined, flow.iss ?? undefined);
  };
  return overlay(provider, outer);
}

module.exports = { withSharedFlows };

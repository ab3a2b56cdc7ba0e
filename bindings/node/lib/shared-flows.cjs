'use strict';
// withSharedFlows: the flow half of an MCP TypeScript SDK OAuthClientProvider (v1 and v2), kept
// in the shared store. Tokens and client registration stay with the user's provider. Each method
// is one store call; the rules (binding, exactly-once, 0/1/many verifiers) are the core's.
const { Store, generateState } = require('./store.cjs');
const { LoopbackCallback } = require('./callback.cjs');
const discovery = require('./discovery.cjs');
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
        // The issuer discovery found (RFC 8414) goes on the flow: a callback from another
        // issuer is then refused by whichever listener receives it.
        const issuer = leg.discovery?.authorizationServerMetadata?.issuer;
        const info = await store.promote(serverId, client, String(url), issuer);
        if (leg.discovery !== undefined) {
          const state = new URL(String(url)).searchParams.get('state');
          await discovery.put(store.path, state, serverId, info.expiresAt, leg.discovery);
        }
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

  function callbackView(flow, discoveryState, authorizationCode, iss) {
    if (flow.info.serverId !== serverId) {
      throw new StoreError(
        ErrorCode.SERVER_MISMATCH,
        'the callback belongs to a flow of another server than this provider; the flow was ended',
        { field: 'server_id' },
      );
    }
    const half = flowHalf({ discovery: discoveryState, verifier: flow.verifier });
    half.authorizationCode = authorizationCode;
    half.iss = iss;
    return overlay(provider, half);
  }

  const outer = flowHalf({ discovery: undefined, verifier: undefined });
  /**
   * A callback arrived (`state`, `code`, `iss` from the redirect): consumes its flow once, in
   * any process, and returns the provider to finish `auth()` with. Its `codeVerifier()` serves
   * that flow's verifier on every call; its `discoveryState()` is the begin leg's.
   */
  outer.forCallback = async ({ state, code, iss } = {}) => {
    const flow = await store.consumeFor(state, serverId);
    const kept = await discovery.take(store.path, state, serverId);
    return callbackView(flow, kept, code ?? flow.code ?? undefined, iss);
  };
  /** Waits on a loopback callback (any process's listener) for `state`, then as forCallback. */
  outer.waitForCallback = async (callback, state, options) => {
    if (!(callback instanceof LoopbackCallback)) {
      throw new TypeError('waitForCallback: callback must come from attach()');
    }
    const flow = await callback.wait(state, options);
    const kept = await discovery.take(store.path, state, serverId);
    return callbackView(flow, kept, flow.code ?? undefined, undefined);
  };
  return overlay(provider, outer);
}

module.exports = { withSharedFlows };

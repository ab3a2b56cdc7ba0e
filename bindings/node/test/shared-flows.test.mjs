// withSharedFlows without an SDK: what each provider method does to the store (the discovery
// state kept on the flow row), and what is passed on to the user's provider.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, withSharedFlows, ErrorCode } from '../index.mjs';

const SERVER = 'https://mcp.example.com/mcp';
const CLIENT = 'client-1';

async function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-'));
  const store = await Store.open(path.join(dir, 'flows.db'));
  const calls = [];
  const user = {
    redirectUrl: 'http://127.0.0.1:33418/callback',
    redirectToAuthorization: (url) => calls.push(['redirect', String(url)]),
    invalidateCredentials: (scope) => calls.push(['invalidate', scope]),
    tokens: () => undefined,
  };
  const provider = withSharedFlows(user, { store, serverId: SERVER, clientId: CLIENT });
  return { store, provider, calls };
}

// What the SDK does on the begin leg, in its order.
async function beginLeg(provider, discovery) {
  await provider.saveDiscoveryState(discovery);
  const state = await provider.state();
  const verifier = crypto.randomBytes(32).toString('base64url');
  await provider.saveCodeVerifier(verifier);
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const url = new URL('https://auth.example.com/authorize');
  url.search = new URLSearchParams({
    response_type: 'code', client_id: CLIENT, state, code_challenge: challenge,
    code_challenge_method: 'S256', redirect_uri: 'http://127.0.0.1:33418/callback',
  }).toString();
  await provider.redirectToAuthorization(url);
  return { state, verifier };
}

test('the begin leg promotes the flow with its discovery state; the callback leg gets it back', async () => {
  const { store, provider, calls } = await setup();
  const discovery = {
    authorizationServerUrl: 'https://auth.example.com',
    authorizationServerMetadata: { issuer: 'https://auth.example.com', authorization_endpoint: 'https://auth.example.com/authorize' },
  };
  const { state, verifier } = await beginLeg(provider, discovery);
  assert.equal(calls[0][0], 'redirect', 'the user redirect runs after the promote');
  const info = await store.check(state);
  assert.equal(info.status, 'pending');
  assert.equal(info.issuer, 'https://auth.example.com', 'the discovered issuer is on the flow');
  assert.equal(await provider.codeVerifier(), verifier, 'one flow in progress: its verifier');
  // The discovery state is on the flow row, nowhere else next to the store file.
  assert.deepEqual(fs.readdirSync(path.dirname(store.path)).filter((n) => !n.startsWith('flows.db')), []);
  assert.ok(!fs.existsSync(`${store.path}.discovery`), 'no sidecar directory');

  // Another process's wrapper on the same file (no memory of the begin leg) finishes it.
  const other = withSharedFlows({ redirectToAuthorization() {} }, { store: await Store.open(store.path), serverId: SERVER, clientId: CLIENT });
  const callback = await other.forCallback({ state, code: 'the-code', iss: 'https://auth.example.com' });
  assert.equal(await callback.codeVerifier(), verifier);
  assert.equal(await callback.codeVerifier(), verifier, 'served again for a retry');
  assert.deepEqual(await callback.discoveryState(), discovery);
  assert.equal(callback.authorizationCode, 'the-code');
  assert.equal(callback.iss, 'https://auth.example.com');
  await assert.rejects(provider.forCallback({ state, code: 'the-code' }), { code: ErrorCode.ALREADY_CONSUMED });
  await assert.rejects(provider.codeVerifier(), { code: ErrorCode.NO_PENDING_VERIFIER });
});

test('a server that promises iss gets a flow that requires it; too large a discovery state binds nothing', async () => {
  const { store, provider } = await setup();
  const metadata = { issuer: 'https://auth.example.com', authorization_response_iss_parameter_supported: true };
  const { state } = await beginLeg(provider, { authorizationServerMetadata: metadata });
  // The listener then refuses a callback without `iss` (test/sdk.test.mjs, on a real
  // listener); the consume hands back the discovery state, parsed as the SDK saved it.
  const flow = await store.consume(state);
  assert.deepEqual(JSON.parse(flow.discovery), { authorizationServerMetadata: metadata });
  assert.equal(flow.info.issuer, 'https://auth.example.com');

  const huge = { authorizationServerMetadata: { issuer: 'https://auth.example.com', padding: 'x'.repeat(70_000) } };
  await assert.rejects(beginLeg(provider, huge), (err) => err.code === ErrorCode.INVALID_INPUT && err.field === 'discovery');
  const stats = await store.stats();
  assert.equal(stats.counts.unbound, 1, 'the verifier stays unbound');
  assert.equal(stats.counts.pending, 0);
});

test('a callback for another server\'s flow is refused and that flow ended', async () => {
  const { store, provider } = await setup();
  const { state } = await beginLeg(provider, undefined);
  const other = withSharedFlows({ redirectToAuthorization() {} }, { store, serverId: 'https://other.example.com', clientId: CLIENT });
  await assert.rejects(other.forCallback({ state, code: 'c' }), { code: ErrorCode.SERVER_MISMATCH });
  // Ended, not usable: today the core reports the tombstone as consumed; FLOW_ENDED once the
  // core keeps the reason.
  await assert.rejects(provider.forCallback({ state, code: 'c' }), (err) =>
    [ErrorCode.ALREADY_CONSUMED, ErrorCode.FLOW_ENDED].includes(err.code));
});

test('invalidateCredentials: verifier deletes this server\'s live flows, other scopes pass on', async () => {
  const { store, provider, calls } = await setup();
  const { state } = await beginLeg(provider, undefined);
  await provider.invalidateCredentials('verifier');
  await assert.rejects(store.check(state), { code: ErrorCode.UNKNOWN_STATE });
  assert.deepEqual(calls.filter((c) => c[0] === 'invalidate'), [], "'verifier' is ours alone");
  await provider.invalidateCredentials('tokens');
  await provider.invalidateCredentials('all');
  assert.deepEqual(calls.filter((c) => c[0] === 'invalidate'), [['invalidate', 'tokens'], ['invalidate', 'all']]);
});

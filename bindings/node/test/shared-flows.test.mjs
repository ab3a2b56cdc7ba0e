// withSharedFlows without an SDK: what each provider method does to the store (the discovery
// state kept on the flow row), and what is passed on to the user's provider.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, withSharedFlows, ErrorCode } from 'oauth-state-store';

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

// What the SDK does on the callback leg when it finishes with the code alone
// (`transport.finishAuth(code)`): discoveryState(), then codeVerifier() right before the token
// request, and after an invalid_grant invalidateCredentials('tokens') and both again.
async function stateLessFinish(provider, { retry = false } = {}) {
  const discovery = await provider.discoveryState();
  const verifier = await provider.codeVerifier();
  if (!retry) return { discovery, verifier };
  await provider.invalidateCredentials('tokens');
  const again = await provider.discoveryState();
  return { discovery, verifier, retried: await provider.codeVerifier(), again };
}

test('a finish without the state consumes the flow it used, exactly once; the retry gets the same verifier', async () => {
  const { store, provider } = await setup();
  const discovery = { authorizationServerMetadata: { issuer: 'https://auth.example.com' } };
  for (let login = 1; login <= 3; login += 1) {
    const { state, verifier } = await beginLeg(provider, discovery);
    const done = await stateLessFinish(provider, { retry: login === 2 });
    assert.equal(done.verifier, verifier, `login ${login}: its own verifier`);
    assert.deepEqual(done.discovery, discovery);
    if (login === 2) {
      assert.equal(done.retried, verifier, 'the retry after invalid_grant gets the same verifier');
      assert.deepEqual(done.again, discovery);
    }
    await assert.rejects(store.check(state), { code: ErrorCode.ALREADY_CONSUMED }, `login ${login} is consumed`);
    const stats = await store.stats();
    assert.equal(stats.counts.pending + stats.counts.completed, 0, `login ${login}: nothing left in progress`);
  }
  // Without a retry signal, a second exchange does not get the used verifier again: nothing is
  // in progress, so there is nothing to take.
  await assert.rejects(provider.codeVerifier(), { code: ErrorCode.NO_PENDING_VERIFIER });
});

test('a process that began nothing takes the one flow in progress, with its discovery state', async () => {
  const { store, provider } = await setup();
  const discovery = { authorizationServerUrl: 'https://auth.example.com', authorizationServerMetadata: { issuer: 'https://auth.example.com' } };
  const { state, verifier } = await beginLeg(provider, discovery);
  // Another process: a wrapper with no memory of the begin leg, on its own Store handle.
  const other = withSharedFlows({ redirectToAuthorization() {} }, { store: await Store.open(store.path), serverId: SERVER, clientId: CLIENT });
  const done = await stateLessFinish(other, { retry: true });
  assert.deepEqual(done.discovery, discovery, 'the discovery state kept on the flow, before the consume');
  assert.equal(done.verifier, verifier);
  assert.equal(done.retried, verifier);
  await assert.rejects(store.check(state), { code: ErrorCode.ALREADY_CONSUMED });
  await assert.rejects(provider.codeVerifier(), { code: ErrorCode.NO_PENDING_VERIFIER }, 'exactly once, in either process');
});

test('several flows in progress: the finish without the state refuses and consumes nothing', async () => {
  const { store, provider } = await setup();
  const one = await beginLeg(provider, undefined);
  const two = await beginLeg(provider, undefined);
  await assert.rejects(provider.codeVerifier(), (e) => e.code === ErrorCode.AMBIGUOUS_PENDING_VERIFIER && e.count === 2);
  const other = withSharedFlows({ redirectToAuthorization() {} }, { store, serverId: SERVER, clientId: CLIENT });
  await assert.rejects(other.codeVerifier(), (e) => e.code === ErrorCode.AMBIGUOUS_PENDING_VERIFIER && e.count === 2);
  assert.equal(await other.discoveryState(), undefined, 'no discovery state is guessed either');
  assert.equal((await store.check(one.state)).status, 'pending');
  assert.equal((await store.check(two.state)).status, 'pending');
  // By state, each is finished; a process's own flow is preferred over another process's.
  const view = await provider.forCallback({ state: one.state, code: 'c1' });
  assert.equal(await view.codeVerifier(), one.verifier);
  const mine = withSharedFlows({ redirectToAuthorization() {} }, { store, serverId: SERVER, clientId: CLIENT });
  const three = await beginLeg(mine, undefined);
  assert.equal(await mine.codeVerifier(), three.verifier, 'its own one flow, though another is in progress');
  assert.equal((await store.check(two.state)).status, 'pending');
});

test('after forCallback or waitForCallback, the provider itself finishes that flow', async () => {
  const { store, provider } = await setup();
  const discovery = { authorizationServerMetadata: { issuer: 'https://auth.example.com' } };
  const { state, verifier } = await beginLeg(provider, discovery);
  const second = await beginLeg(withSharedFlows({ redirectToAuthorization() {} }, { store, serverId: SERVER, clientId: CLIENT }), discovery);
  await provider.forCallback({ state, code: 'the-code' });
  // The app's own transport: auth(provider, { authorizationCode }) asks the provider.
  const done = await stateLessFinish(provider, { retry: true });
  assert.equal(done.verifier, verifier);
  assert.equal(done.retried, verifier);
  assert.deepEqual(done.discovery, discovery);
  // Used once: the next finish takes the next flow, not this one again.
  assert.equal(await provider.codeVerifier(), second.verifier);
});

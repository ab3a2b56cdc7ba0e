// withSharedTokens in one process, against a token endpoint made here that rotates refresh
// tokens and revokes the family on reuse: what its fetch sends, what it answers without
// sending, the refusal rule through invalidateCredentials, a released lease, foreign requests,
// and no token in a print or an error. Two wrappers on two Store handles of one file stand for
// two processes (the real processes are test/refresh.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { Store, StoreError, ErrorCode, withSharedTokens } from 'oauth-state-store';

const SERVER = 'https://mcp.example.com/mcp';
const CLIENT = 'client-1';
const TOKEN_URL = 'https://as.example.com/token';
const SECRET = /secret-(access|refresh)/;

/** A rotating token endpoint: each refresh token works once; a reused one revokes the family. */
function tokenEndpoint() {
  const as = { live: new Set(['secret-refresh-1']), used: new Set(), next: 2, requests: [], revoked: false, answer: undefined };
  as.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url !== TOKEN_URL) {
      // A resource server that refuses every access token.
      as.requests.push({ url, authorization: new Headers(init?.headers).get('authorization') });
      return new Response('', { status: 401 });
    }
    const body = new URLSearchParams(init.body);
    const presented = body.get('refresh_token');
    as.requests.push({ url, presented });
    if (as.answer) return as.answer();
    const json = (status, value) => new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
    if (as.revoked || !as.live.has(presented)) {
      if (as.used.has(presented)) as.revoked = true;
      return json(400, { error: 'invalid_grant', error_description: 'grant request is invalid' });
    }
    as.live.delete(presented);
    as.used.add(presented);
    const n = as.next++;
    as.live.add(`secret-refresh-${n}`);
    return json(200, { access_token: `secret-access-${n}`, token_type: 'Bearer', refresh_token: `secret-refresh-${n}`, expires_in: 3600 });
  };
  return as;
}

async function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-shared-tokens-'));
  const db = path.join(dir, 'flows.db');
  const store = await Store.open(db);
  await store.saveTokens(SERVER, CLIENT, {
    access_token: 'secret-access-1',
    token_type: 'Bearer',
    refresh_token: 'secret-refresh-1',
    expires_in: 3600,
  });
  const as = tokenEndpoint();
  const invalidated = [];
  const wrapper = async (options = {}) => {
    const user = {
      redirectToAuthorization() {},
      invalidateCredentials(scope) {
        invalidated.push(scope);
      },
    };
    return withSharedTokens(user, { store: await Store.open(db), serverId: SERVER, clientId: CLIENT, fetch: as.fetch, ...options });
  };
  return { store, as, wrapper, invalidated };
}

/** The SDK's refresh request (both SDKs send this form). */
function refreshRequest(provider, refreshToken) {
  return provider.fetch(new URL(TOKEN_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT }),
  });
}

test('tokens() and saveTokens() are the store; the SDK saving what it got makes no new generation', async () => {
  const { store, wrapper } = await setup();
  const a = await wrapper();
  const tokens = await a.tokens();
  assert.equal(tokens.access_token, 'secret-access-1');
  assert.equal(tokens.refresh_token, 'secret-refresh-1');
  await a.saveTokens({ ...tokens, issuer: 'https://as.example.com' });
  assert.equal((await store.tokens(SERVER, CLIENT)).generation, 1);
  await a.saveTokens({ access_token: 'secret-access-9', token_type: 'Bearer', refresh_token: 'secret-refresh-9' });
  assert.equal((await store.tokens(SERVER, CLIENT)).generation, 2);
  // The wrapper keeps what it handed out to itself: printing the provider shows none of it.
  await a.tokens();
  for (const options of [{ depth: null, showHidden: true }, { depth: null, showProxy: true }]) {
    assert.doesNotMatch(util.inspect(a, options), SECRET);
  }
});

test('the holder sends once and saves first; a process that saw the old set gets the new one without sending', async () => {
  const { store, as, wrapper } = await setup();
  const a = await wrapper();
  const b = await wrapper();
  const seenByA = await a.tokens();
  const seenByB = await b.tokens();
  const resA = await refreshRequest(a, seenByA.refresh_token);
  assert.equal(resA.status, 200);
  assert.equal((await resA.json()).access_token, 'secret-access-2');
  assert.equal((await store.tokens(SERVER, CLIENT)).generation, 2, 'saved before the SDK saw the response');
  // B presents generation 1's refresh token, which the server already rotated.
  const resB = await refreshRequest(b, seenByB.refresh_token);
  assert.equal(resB.status, 200);
  const answered = await resB.json();
  assert.equal(answered.access_token, 'secret-access-2');
  assert.equal(answered.refresh_token, 'secret-refresh-2');
  assert.equal(answered.issuer, undefined, 'a token response, as a token endpoint would answer');
  assert.deepEqual(as.requests.map((r) => r.presented), ['secret-refresh-1'], 'one request in all');
  assert.equal(as.revoked, false);
});

test('a process whose 401 was for generation 1 gets generation 2 even when auth() read generation 2', async () => {
  const { as, wrapper } = await setup();
  const a = await wrapper();
  const b = await wrapper();
  const seen = await a.tokens();
  // The transport's request with generation 1's access token is refused (expired).
  const refused = await a.fetch('https://mcp.example.com/mcp', { headers: { Authorization: `Bearer ${seen.access_token}` } });
  assert.equal(refused.status, 401);
  await refreshRequest(b, (await b.tokens()).refresh_token); // another process refreshes
  // auth() in A now reads generation 2 and presents its refresh token.
  const current = await a.tokens();
  assert.equal(current.refresh_token, 'secret-refresh-2');
  const res = await refreshRequest(a, current.refresh_token);
  assert.equal((await res.json()).access_token, 'secret-access-2');
  assert.equal(as.requests.filter((r) => r.url === TOKEN_URL).length, 1, 'A sent nothing');
});

test('the lease holder refused with invalid_grant revokes the set; the SDK gets the refusal', async () => {
  const { store, as, wrapper, invalidated } = await setup();
  const a = await wrapper();
  as.live.clear(); // the server forgot the grant
  const res = await refreshRequest(a, (await a.tokens()).refresh_token);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'invalid_grant');
  assert.equal(await store.tokens(SERVER, CLIENT), undefined, 'revoked: sign in again');
  // What the SDK does next: invalidate the tokens, read them again (none: a new login).
  await a.invalidateCredentials('tokens');
  assert.deepEqual(invalidated, ['tokens'], 'passed on to the provider');
  assert.equal(await a.tokens(), undefined);
  // A further refresh request for those tokens is answered invalid_grant, not sent.
  const again = await refreshRequest(a, 'secret-refresh-1');
  assert.equal(again.status, 400);
  assert.equal(as.requests.length, 1);
});

test('a stale invalid_grant never deletes a newer set; a current one does', async () => {
  const { store, wrapper } = await setup();
  const a = await wrapper();
  const b = await wrapper();
  await a.tokens(); // A holds generation 1
  await refreshRequest(b, (await b.tokens()).refresh_token); // B saves generation 2
  // A refreshed generation 1 outside the wrapper's fetch, was refused, and the SDK gives up
  // its tokens: generation 2 stays.
  await a.invalidateCredentials('tokens');
  const kept = await store.tokens(SERVER, CLIENT);
  assert.equal(kept.generation, 2);
  assert.equal(kept.accessToken, 'secret-access-2');
  assert.equal((await a.tokens()).access_token, 'secret-access-2');
  // B gives up generation 2, the stored one: the set is revoked for everyone.
  await b.invalidateCredentials('all');
  assert.equal(await store.tokens(SERVER, CLIENT), undefined);
  assert.equal(await a.tokens(), undefined);
});

test('a transient failure releases the lease at once: the next caller sends the same stored token', async () => {
  const { as, wrapper } = await setup();
  const a = await wrapper();
  const b = await wrapper();
  const presented = (await a.tokens()).refresh_token;
  as.answer = () => new Response('{"error":"temporarily_unavailable"}', { status: 503 });
  assert.equal((await refreshRequest(a, presented)).status, 503);
  as.answer = undefined;
  const started = Date.now();
  const res = await refreshRequest(b, (await b.tokens()).refresh_token);
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started < 5000, 'no wait for the lease to expire');
  assert.deepEqual(as.requests.map((r) => r.presented), ['secret-refresh-1', 'secret-refresh-1']);
});

test('a refresh token the store never held passes through untouched', async () => {
  const { as, wrapper } = await setup();
  const a = await wrapper();
  const res = await refreshRequest(a, 'secret-refresh-foreign');
  assert.equal(res.status, 400);
  assert.deepEqual(as.requests.map((r) => r.presented), ['secret-refresh-foreign']);
});

test('waiting past waitMs for another holder is REFRESH_WAIT_TIMEOUT, with no token in it', async () => {
  const { store, as, wrapper } = await setup();
  const a = await wrapper({ waitMs: 300 });
  const presented = (await a.tokens()).refresh_token;
  const held = await store.tryBeginRefresh(SERVER, CLIENT, 1); // another process holds the lease
  const err = await refreshRequest(a, presented).catch((e) => e);
  assert.ok(err instanceof StoreError, String(err));
  assert.equal(err.code, ErrorCode.REFRESH_WAIT_TIMEOUT);
  assert.ok(err.waitedMs >= 300);
  assert.doesNotMatch(`${err.message} ${util.inspect(err)}`, SECRET);
  assert.equal(as.requests.length, 0);
  await store.releaseRefresh(held.lease);
});

test('bad options are INVALID_INPUT naming the field', async () => {
  const { store } = await setup();
  const user = { redirectToAuthorization() {} };
  for (const [options, field] of [
    [{ store: {}, serverId: SERVER }, 'store'],
    [{ store, serverId: 1 }, 'serverId'],
    [{ store, serverId: SERVER, fetch: 'secret-access-1' }, 'fetch'],
    [{ store, serverId: SERVER, leaseMs: 5 }, 'leaseMs'],
    [{ store, serverId: SERVER, lease: 5 }, 'lease'],
  ]) {
    assert.throws(() => withSharedTokens(user, options), (e) => e.code === ErrorCode.INVALID_INPUT && e.field === field && !SECRET.test(e.message));
  }
});

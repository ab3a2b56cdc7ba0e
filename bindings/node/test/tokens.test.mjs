// Token sets and the single-flight refresh through the Store's own methods, on a store file:
// generations, the newer set instead of a second refresh, the lease, compare-and-swap, the
// refusal rule (a stale invalid_grant never clears a newer set), and no token in any print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { Store, StoreError, ErrorCode, RefreshLease } from 'oauth-state-store';

const SERVER = 'https://mcp.example.com/mcp';
const CLIENT = 'client-1';

async function openStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-tokens-'));
  return Store.open(path.join(dir, 'flows.db'));
}

const response = (n, extra = {}) => ({
  access_token: `secret-access-${n}`,
  token_type: 'Bearer',
  refresh_token: `secret-refresh-${n}`,
  expires_in: 3600,
  ...extra,
});

/** Every token a test saved, for the "never printed" checks. */
const SECRET = /secret-(access|refresh|idtoken)/;

test('save, read, forget: generations, the same tokens again, a replaced refresh token', async () => {
  const store = await openStore();
  assert.equal(await store.tokens(SERVER, CLIENT), undefined);
  assert.deepEqual(await store.saveTokens(SERVER, CLIENT, response(1, { id_token: 'secret-idtoken' })), {
    outcome: 'stored',
    generation: 1,
  });
  const set = await store.tokens(SERVER, CLIENT);
  assert.equal(set.generation, 1);
  assert.equal(set.accessToken, 'secret-access-1');
  assert.equal(set.refreshToken, 'secret-refresh-1');
  assert.ok(set.expiresInMs > 3_500_000 && set.expiresInMs <= 3_600_000);
  const oauth = set.toOAuthTokens();
  assert.equal(oauth.id_token, 'secret-idtoken', 'the other members come back');
  assert.equal(oauth.access_token, 'secret-access-1');
  assert.ok(oauth.expires_in >= 3590 && oauth.expires_in <= 3600);
  // The SDKs save what they got again (v2 stamps the issuer): no new generation.
  assert.deepEqual(await store.saveTokens(SERVER, CLIENT, { ...oauth, issuer: 'https://as.example.com' }), {
    outcome: 'unchanged',
    generation: 1,
  });
  assert.equal((await store.tokens(SERVER, CLIENT)).issuer, 'https://as.example.com');
  assert.deepEqual(await store.saveTokens(SERVER, CLIENT, response(2)), { outcome: 'stored', generation: 2 });
  // Generation 1's refresh token was replaced: it is never stored again.
  assert.deepEqual(await store.saveTokens(SERVER, CLIENT, response(1)), { outcome: 'stale', generation: 2 });
  assert.equal((await store.tokens(SERVER, CLIENT)).accessToken, 'secret-access-2');
  assert.equal(await store.forgetTokens(SERVER, CLIENT), 1);
  assert.equal(await store.tokens(SERVER, CLIENT), undefined);
});

test('a refresh: the lease, a waiter, the newer set for whoever saw the old one', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1));
  const begun = await store.tryBeginRefresh(SERVER, CLIENT, 1, { leaseMs: 5000, owner: 'node test' });
  assert.equal(begun.kind, 'lease');
  const { lease } = begun;
  assert.ok(lease instanceof RefreshLease);
  assert.equal(lease.generation, 1);
  assert.equal(lease.tookOver, false);
  assert.equal(lease.refreshToken(), 'secret-refresh-1');
  assert.ok(lease.deadlineInMs() > 2000 && lease.deadlineInMs() <= 3000, `${lease.deadlineInMs()}`);
  // Another caller that saw generation 1 waits while the lease runs.
  const waiting = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  assert.equal(waiting.kind, 'wait');
  assert.equal(waiting.seen, 1);
  assert.ok(waiting.leaseLeftMs > 0 && waiting.leaseLeftMs <= 5000);
  const finished = await store.finishRefresh(lease, response(2));
  assert.equal(finished.outcome, 'saved');
  assert.equal(finished.set.generation, 2);
  assert.equal(lease.refreshToken(), undefined, 'an ended lease holds no token');
  await assert.rejects(store.releaseRefresh(lease), { code: ErrorCode.INVALID_INPUT, field: 'lease' });
  // The waiter (and anyone who saw generation 1) gets generation 2 and sends nothing.
  const newer = await store.tryBeginRefresh(SERVER, CLIENT, waiting.seen);
  assert.equal(newer.kind, 'newer');
  assert.equal(newer.set.accessToken, 'secret-access-2');
});

test('compare-and-swap: a login saved during a refresh wins, the response is dropped', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1));
  const { lease } = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  await store.saveTokens(SERVER, CLIENT, response('login'));
  const finished = await store.finishRefresh(lease, response(2));
  assert.equal(finished.outcome, 'superseded');
  assert.equal(finished.set.accessToken, 'secret-access-login');
  assert.equal((await store.tokens(SERVER, CLIENT)).accessToken, 'secret-access-login');
});

test('a released lease is taken at once by the next caller, with the same stored token', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1));
  const first = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  await store.releaseRefresh(first.lease);
  const second = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  assert.equal(second.kind, 'lease');
  assert.equal(second.lease.refreshToken(), 'secret-refresh-1');
  await store.releaseRefresh(second.lease);
});

test('the refusal rule: a stale invalid_grant never clears a newer set, a current one revokes it', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1));
  const { lease } = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  await store.finishRefresh(lease, response(2));
  // A process that refreshed generation 1 outside the store got invalid_grant.
  const stale = await store.rejectTokens(SERVER, CLIENT, 1, 'invalid_grant');
  assert.equal(stale.outcome, 'stale');
  assert.equal(stale.set.accessToken, 'secret-access-2');
  assert.equal((await store.tokens(SERVER, CLIENT)).generation, 2, 'generation 2 is kept');
  // The lease holder of generation 2 is refused: the set is revoked.
  const current = await store.tryBeginRefresh(SERVER, CLIENT, 2);
  const revoked = await store.rejectRefresh(current.lease, 'invalid_grant');
  assert.equal(revoked.outcome, 'revoked');
  assert.equal(await store.tokens(SERVER, CLIENT), undefined);
  const err = await store.tryBeginRefresh(SERVER, CLIENT, 2).catch((e) => e);
  assert.ok(err instanceof StoreError, String(err));
  assert.equal(err.code, ErrorCode.TOKENS_REVOKED);
  assert.equal(err.reason, 'invalid_grant');
  assert.equal(err.afterLostHolder, false);
  assert.equal((await store.rejectTokens(SERVER, CLIENT, 2, 'invalid_grant')).outcome, 'gone');
});

test('refresh errors carry their codes: NO_TOKENS, NO_REFRESH_TOKEN', async () => {
  const store = await openStore();
  await assert.rejects(store.tryBeginRefresh(SERVER, CLIENT, null), { code: ErrorCode.NO_TOKENS });
  await store.saveTokens(SERVER, CLIENT, { access_token: 'secret-access-x', token_type: 'Bearer' });
  await assert.rejects(store.tryBeginRefresh(SERVER, CLIENT, null), { code: ErrorCode.NO_REFRESH_TOKEN });
});

test('bad input is INVALID_INPUT naming the field, never printing the value, and writes nothing', async () => {
  const store = await openStore();
  const cases = [
    [() => store.saveTokens(SERVER, CLIENT, { token_type: 'Bearer', refresh_token: 'secret-refresh-1' }), 'access_token'],
    [() => store.saveTokens(SERVER, CLIENT, { ...response(1), access_token: 'secret-access-1\n' }), 'access_token'],
    [() => store.saveTokens(SERVER, CLIENT, { ...response(1), refresh_token: 42 }), 'refresh_token'],
    [() => store.saveTokens(SERVER, CLIENT, { ...response(1), expires_in: -1 }), 'expires_in'],
    [() => store.saveTokens(SERVER, CLIENT, { ...response(1), token_type: 'Bearer token' }), 'token_type'],
    [() => store.saveTokens(SERVER, CLIENT, 'secret-access-1'), 'tokens'],
    [() => store.tryBeginRefresh(SERVER, CLIENT, -1), 'seen'],
    [() => store.tryBeginRefresh(SERVER, CLIENT, 1, { leaseMs: 10 }), 'leaseMs'],
    [() => store.rejectTokens(SERVER, CLIENT, 1, 'invalid\ngrant'), 'error'],
    [() => store.releaseRefresh({ refreshToken: () => 'secret-refresh-1' }), 'lease'],
  ];
  for (const [run, field] of cases) {
    const err = await run().catch((e) => e);
    assert.ok(err instanceof StoreError, `${field}: ${err}`);
    assert.equal(err.code, ErrorCode.INVALID_INPUT, `${field}: ${err.message}`);
    assert.equal(err.field, field, err.message);
    assert.doesNotMatch(err.message + util.inspect(err), SECRET);
  }
  assert.equal(await store.tokens(SERVER, CLIENT), undefined, 'nothing was written');
});

test('no token in util.inspect, console.log or JSON of a set, a lease or an outcome', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1, { id_token: 'secret-idtoken' }));
  const set = await store.tokens(SERVER, CLIENT);
  const begun = await store.tryBeginRefresh(SERVER, CLIENT, 1);
  const finished = await store.finishRefresh(begun.lease, response(2));
  for (const value of [set, begun, begun.lease, finished, { nested: { deeper: [set] } }]) {
    for (const text of [
      util.inspect(value, { depth: null, showHidden: true }),
      util.format('%o', value),
      JSON.stringify(value),
      String(value),
    ]) {
      assert.doesNotMatch(text, SECRET, text);
    }
  }
  assert.deepEqual(Object.keys(set).filter((k) => /token|extra/i.test(k)), ['tokenType']);
});

test('listTokenSets describes every set without a token: generation, state, lease holder', async () => {
  const store = await openStore();
  await store.saveTokens(SERVER, CLIENT, response(1));
  await store.saveTokens('https://other.example.com', CLIENT, response('other'));
  const { lease } = await store.tryBeginRefresh(SERVER, CLIENT, 1, { owner: 'node test' });
  const listed = await store.listTokenSets(SERVER);
  assert.equal(listed.length, 1);
  const [set] = listed;
  assert.equal(set.serverId, SERVER);
  assert.equal(set.generation, 1);
  assert.equal(set.state, 'live');
  assert.equal(set.hasRefreshToken, true);
  assert.equal(set.tokenType, 'Bearer');
  assert.match(set.leaseOwner, new RegExp(`^pid ${process.pid} \\(node test\\)$`));
  assert.ok(set.leaseExpiresAt > Date.now());
  await store.rejectRefresh(lease, 'invalid_grant');
  const all = await store.listTokenSets();
  assert.equal(all.length, 2);
  const revoked = all.find((s) => s.serverId === SERVER);
  assert.equal(revoked.state, 'revoked');
  assert.equal(revoked.revokedReason, 'invalid_grant');
  assert.equal(revoked.leaseOwner, undefined);
  assert.doesNotMatch(JSON.stringify(all) + util.inspect(all, { depth: null }), SECRET);
});

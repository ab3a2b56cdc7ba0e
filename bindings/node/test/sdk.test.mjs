// The MCP TypeScript SDK (v1 and v2) through withSharedFlows, against a real authorization
// server (oidc-provider), with real processes sharing only the store file; each client process
// runs on the runtime of the test (Node, or Bun under `bun test`).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAuthServer, CLIENT_ID } from './support/authserver.mjs';
import { get, login } from './support/browser.mjs';
import { startClient } from './support/processes.mjs';

const REDIRECT = 'http://127.0.0.1:38123/callback';

function tempDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-'));
  return path.join(dir, 'flows.db');
}

/** The discovery state travels on the flow row: nothing but the store's own files beside it. */
function assertOnlyTheStore(db) {
  const beside = fs.readdirSync(path.dirname(db)).filter((n) => !/^flows\.db(-wal|-shm)?$/.test(n));
  assert.deepEqual(beside, [], 'no sidecar file or directory next to the store');
}

/**
 * A describe block's authorization server (started before its tests, closed after) and the
 * configuration of a client process of `sdk` against it; each client keeps its registration
 * in a file of its app, shared by the processes of one configuration.
 */
function suite(sdk) {
  const as = { issuer: undefined };
  let server;
  before(async () => {
    server = await startAuthServer();
    as.issuer = server.issuer;
  });
  after(async () => {
    await server.close();
  });
  const config = (db, extra = {}) => ({
    sdk,
    db,
    serverUrl: as.issuer,
    serverId: as.issuer,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT,
    clientFile: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-app-')), 'client.json'),
    ...extra,
  });
  return { as, config };
}

for (const sdk of ['v1', 'v2']) {
  describe(`MCP SDK ${sdk}`, () => {
    const { as, config } = suite(sdk);

    test('auth() begun in A is finished in B with the code; a replay is refused', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      const b = startClient(config(db));
      try {
        // Both clients run on the tests' runtime: under `bun test`, two Bun processes.
        const runtime = { bun: process.versions.bun ?? null, node: process.versions.node };
        for (const client of [a, b]) assert.deepEqual(await client.send({ cmd: 'runtime' }), runtime);
        const begun = await a.send({ cmd: 'begin' });
        assert.equal(begun.result, 'REDIRECT', JSON.stringify(begun));
        const { params } = await login(begun.authorizationUrl, REDIRECT);
        assert.ok(params.code, 'the browser got a code');
        const done = await b.send({ cmd: 'finish', state: params.state, code: params.code, iss: params.iss });
        assert.equal(done.result, 'AUTHORIZED', JSON.stringify(done));
        assert.ok(done.tokenLength > 0, 'B holds an access token');
        const replay = await a.send({ cmd: 'finish', state: params.state, code: params.code, iss: params.iss });
        assert.equal(replay.error, 'ALREADY_CONSUMED', JSON.stringify(replay));
        assert.ok(!replay.message.includes(params.state) && !replay.message.includes(params.code));
        assertOnlyTheStore(db);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    test('after invalid_grant the SDK retries, and codeVerifier() serves the consumed flow again', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      const b = startClient(config(db));
      try {
        const begun = await a.send({ cmd: 'begin' });
        const { params } = await login(begun.authorizationUrl, REDIRECT);
        const done = await b.send({ cmd: 'finish', ...pick(params), refuseFirstExchange: true });
        assert.equal(done.result, 'AUTHORIZED', JSON.stringify(done));
        assert.equal(done.exchanges, 2, 'the first exchange was refused, the retry went through');
        assert.ok(done.tokenLength > 0);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    test('two overlapping logins for one server each finish with their own verifier', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      const b = startClient(config(db));
      try {
        const first = await a.send({ cmd: 'begin' });
        const second = await a.send({ cmd: 'begin' });
        assert.equal(first.result, 'REDIRECT');
        assert.equal(second.result, 'REDIRECT');
        // Outside a callback, two flows in progress: the ambiguity error, never a guess.
        const guess = await b.send({ cmd: 'codeVerifier' });
        assert.equal(guess.error, 'AMBIGUOUS_PENDING_VERIFIER', JSON.stringify(guess));
        const one = await login(first.authorizationUrl, REDIRECT);
        const two = await login(second.authorizationUrl, REDIRECT);
        // The later login first: each is finished with its own flow's verifier (the
        // authorization server checks PKCE, so a swapped verifier would fail the exchange).
        const doneTwo = await b.send({ cmd: 'finish', ...pick(two.params) });
        assert.equal(doneTwo.result, 'AUTHORIZED', JSON.stringify(doneTwo));
        const doneOne = await b.send({ cmd: 'finish', ...pick(one.params) });
        assert.equal(doneOne.result, 'AUTHORIZED', JSON.stringify(doneOne));
        assertOnlyTheStore(db);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    test('a callback on the listener held by A completes B\'s wait', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      const b = startClient(config(db));
      try {
        const held = await a.send({ cmd: 'attach', port: 0 });
        assert.equal(held.holdsPort, true, JSON.stringify(held));
        const shared = await b.send({ cmd: 'attach', port: held.port });
        assert.equal(shared.holdsPort, false, 'B shares the port A holds');
        const begun = await b.send({ cmd: 'begin' });
        assert.equal(begun.result, 'REDIRECT', JSON.stringify(begun));
        const state = new URL(begun.authorizationUrl).searchParams.get('state');
        const waiting = b.send({ cmd: 'waitFinish', state, timeoutMs: 20_000 });
        const { answer } = await login(begun.authorizationUrl, held.redirectUri, { deliver: true });
        assert.equal(answer.status, 200, answer.body);
        const done = await waiting;
        // The listener checked the callback's `iss` against the flow's issuer and `wait`
        // handed it on: v2's RFC 9207 check on the callback leg passes.
        assert.equal(done.result, 'AUTHORIZED', JSON.stringify(done));
        assert.ok(done.tokenLength > 0);
        assertOnlyTheStore(db);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    test('on the listener, a callback with a wrong or no iss is refused; the right one finishes', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      const b = startClient(config(db));
      try {
        const held = await a.send({ cmd: 'attach', port: 0 });
        await b.send({ cmd: 'attach', port: held.port });
        const begun = await b.send({ cmd: 'begin' });
        assert.equal(begun.result, 'REDIRECT', JSON.stringify(begun));
        const state = new URL(begun.authorizationUrl).searchParams.get('state');
        const waiting = b.send({ cmd: 'waitFinish', state, timeoutMs: 20_000 });
        const { callbackUrl, params } = await login(begun.authorizationUrl, held.redirectUri);
        assert.equal(params.iss, as.issuer, 'the server sends iss (RFC 9207)');
        const forged = new URL(callbackUrl);
        forged.searchParams.set('iss', 'http://127.0.0.1:1/another-issuer');
        const wrong = await get(forged);
        assert.notEqual(wrong.status, 200, wrong.body);
        const missing = new URL(callbackUrl);
        missing.searchParams.delete('iss');
        const without = await get(missing);
        assert.notEqual(without.status, 200, without.body);
        // Neither changed the flow: the real callback still completes B's wait.
        const right = await get(new URL(callbackUrl));
        assert.equal(right.status, 200, right.body);
        const done = await waiting;
        assert.equal(done.result, 'AUTHORIZED', JSON.stringify(done));
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  });
}

function pick({ state, code, iss }) {
  return { state, code, iss };
}

// The SDKs' usual way to finish a login: the code (and iss) alone, on the app's own transport:
// v1 `transport.finishAuth(code)`, v2 `transport.finishAuth(callbackParams)`, @ai-sdk/mcp
// `auth(provider, { authorizationCode })`. Each finish must end the flow it used, so that the
// next login is not ambiguous.
for (const sdk of ['v1', 'v2', 'ai']) {
  describe(`${sdk}: three logins in a row, finished the SDK's usual way`, () => {
    const { config } = suite(sdk);
    // @ai-sdk/mcp does not retry a refused code exchange; v1 and v2 do, with the same code.
    const retries = sdk !== 'ai';

    async function nothingInProgress(client) {
      const stats = await client.send({ cmd: 'stats' });
      assert.equal(stats.counts.pending + stats.counts.completed + stats.counts.unbound, 0, JSON.stringify(stats));
    }

    test('in one process', async () => {
      const db = tempDb();
      const a = startClient(config(db));
      try {
        for (let n = 1; n <= 3; n += 1) {
          const begun = await a.send({ cmd: 'begin' });
          assert.equal(begun.result, 'REDIRECT', `login ${n}: ${JSON.stringify(begun)}`);
          const { params } = await login_(begun.authorizationUrl);
          const refuse = retries && n === 2;
          const done = await a.send({ cmd: 'finishUsual', code: params.code, iss: params.iss, refuseFirstExchange: refuse });
          assert.equal(done.result, 'AUTHORIZED', `login ${n}: ${JSON.stringify(done)}`);
          assert.ok(done.tokenLength > 0);
          if (refuse) assert.equal(done.exchanges, 2, 'the retry got the same verifier and went through');
          await nothingInProgress(a);
        }
      } finally {
        await a.stop();
      }
    });

    test('across two processes: begun in A, finished in B', async () => {
      const db = tempDb();
      const shared = config(db);
      const a = startClient(shared);
      const b = startClient(shared);
      try {
        for (let n = 1; n <= 3; n += 1) {
          const begun = await a.send({ cmd: 'begin' });
          assert.equal(begun.result, 'REDIRECT', `login ${n}: ${JSON.stringify(begun)}`);
          const { params } = await login_(begun.authorizationUrl);
          const refuse = retries && n === 3;
          const done = await b.send({ cmd: 'finishUsual', code: params.code, iss: params.iss, refuseFirstExchange: refuse });
          assert.equal(done.result, 'AUTHORIZED', `login ${n}: ${JSON.stringify(done)}`);
          if (refuse) assert.equal(done.exchanges, 2);
          await nothingInProgress(b);
        }
        assertOnlyTheStore(db);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    test('after waitForCallback, on the app\'s own transport, the listener held by another process', async () => {
      const db = tempDb();
      const shared = config(db);
      const a = startClient(shared);
      const b = startClient(shared);
      try {
        const held = await a.send({ cmd: 'attach', port: 0 });
        await b.send({ cmd: 'attach', port: held.port });
        for (let n = 1; n <= 3; n += 1) {
          const begun = await b.send({ cmd: 'begin' });
          assert.equal(begun.result, 'REDIRECT', `login ${n}: ${JSON.stringify(begun)}`);
          const state = new URL(begun.authorizationUrl).searchParams.get('state');
          const waiting = b.send({ cmd: 'waitFinishUsual', state, timeoutMs: 20_000 });
          const { answer } = await login(begun.authorizationUrl, held.redirectUri, { deliver: true });
          assert.equal(answer.status, 200, answer.body);
          const done = await waiting;
          assert.equal(done.result, 'AUTHORIZED', `login ${n}: ${JSON.stringify(done)}`);
          await nothingInProgress(b);
        }
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  });
}

function login_(authorizationUrl) {
  return login(authorizationUrl, REDIRECT);
}

// What begin(), consume(), wait() and the SDK wrapper hand back prints without its secrets:
// util.inspect, console.log's formatting and JSON.stringify show `[redacted]` for the state,
// verifier and code, while property access still reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { Store, attach, withSharedFlows } from 'oauth-state-store';

const SERVER = 'https://mcp.example.com';

async function openTemp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-'));
  return Store.open(path.join(dir, 'flows.db'));
}

/** Every way a user's log line could print `value`. */
function printed(value) {
  return [
    util.inspect(value),
    util.inspect(value, { depth: Infinity, showHidden: true, getters: true }),
    util.format('%o', value),
    util.format('%O', value),
    util.format('%s', value),
    util.format('%j', value),
    util.format('flow:', value),
    JSON.stringify(value),
    JSON.stringify({ nested: [value] }),
    String(value),
  ];
}

function assertHidden(value, secrets, label) {
  for (const text of printed(value)) {
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `${label} printed a secret:\n${text}`);
    }
  }
}

test('a begun flow prints its state as [redacted]; flow.state still reads it', async () => {
  const store = await openTemp();
  const flow = await store.begin({ serverId: SERVER, clientId: 'c' });
  assert.equal(flow.state.length, 43);
  assertHidden(flow, [flow.state], 'begin()');
  assert.match(util.inspect(flow), /state: '\[redacted\]'/);
  assert.match(util.inspect(flow), new RegExp(flow.codeChallenge), 'the challenge is no secret');
  assert.deepEqual(JSON.parse(JSON.stringify(flow)).state, '[redacted]');
  assert.equal(JSON.parse(JSON.stringify(flow)).info.serverId, SERVER);
});

test('a consumed flow prints its verifier and code as [redacted]; the properties read them', async () => {
  const store = await openTemp();
  const flow = await store.begin({ serverId: SERVER });
  await store.complete(flow.state, 'the-authorization-code-1234');
  const done = await store.consume(flow.state);
  assert.equal(done.code, 'the-authorization-code-1234');
  assert.equal(done.verifier.length, 43);
  assertHidden(done, [done.verifier, done.code, flow.state], 'consume()');
  const shown = util.inspect(done);
  assert.match(shown, /verifier: '\[redacted\]'/);
  assert.match(shown, /code: '\[redacted\]'/);
  assert.match(shown, /serverId: 'https:\/\/mcp\.example\.com'/, 'the description stays readable');
  // Destructuring and spreading read the values as properties do.
  const { verifier, code } = done;
  assert.equal(verifier, done.verifier);
  assert.equal(code, done.code);
});

test('what wait() and the SDK wrapper hand back print no secret', async () => {
  const store = await openTemp();
  const callback = await attach(store, { port: 0 });
  const flow = await store.begin({ serverId: SERVER, redirectUri: callback.redirectUri });
  const waiting = callback.wait(flow.state, { timeoutMs: 20_000 });
  await new Promise((resolve, reject) => {
    http.get(`${callback.redirectUri}?state=${flow.state}&code=code-from-the-wait-5678`, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const done = await waiting;
  assert.equal(done.code, 'code-from-the-wait-5678');
  assertHidden(done, [done.verifier, done.code, flow.state], 'wait()');

  const provider = withSharedFlows({ redirectToAuthorization() {}, tokens: () => undefined }, { store, serverId: SERVER });
  const second = await store.begin({ serverId: SERVER });
  const view = await provider.forCallback({ state: second.state, code: 'code-for-the-view-9012' });
  assert.equal(view.authorizationCode, 'code-for-the-view-9012');
  const verifierOfView = await view.codeVerifier();
  assertHidden(view, [verifierOfView, 'code-for-the-view-9012', second.state], 'forCallback()');
  assertHidden(provider, [verifierOfView, 'code-for-the-view-9012', second.state], 'the provider');
});

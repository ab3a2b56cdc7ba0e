// The Store and the loopback callback through the binding: codes, secrets kept out of
// messages, both entry points, and waits that run off the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as esm from 'oauth-state-store';

const { Store, attach, ErrorCode, StoreError } = esm;
const openDefaultScript = fileURLToPath(new URL('./support/open-default.mjs', import.meta.url));
const SERVER = 'https://mcp.example.com';

async function openTemp(options) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-'));
  return Store.open(path.join(dir, 'flows.db'), options);
}

async function rejects(promise, code) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof StoreError, `a StoreError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    }).on('error', reject);
  });
}

test('the CommonJS and ES module entry points export the same objects', () => {
  const cjs = createRequire(import.meta.url)('oauth-state-store');
  for (const name of ['Store', 'attach', 'withSharedFlows', 'ErrorCode', 'StoreError', 'LoopbackCallback']) {
    assert.equal(esm[name], cjs[name], name);
  }
});

test('lockWait takes "backoff" or "aging"; anything else is INVALID_INPUT naming it', async () => {
  for (const lockWait of ['backoff', 'aging']) {
    const store = await openTemp({ lockWait, busyTimeoutMs: 2000 });
    const flow = await store.begin({ serverId: SERVER });
    assert.equal((await store.consume(flow.state)).verifier.length, 43, lockWait);
  }
  const bad = await rejects(openTemp({ lockWait: 'spin' }), ErrorCode.INVALID_INPUT);
  assert.equal(bad.field, 'lockWait');
});

test('begin, check, consume; a replay is ALREADY_CONSUMED, unlike an unknown state', async () => {
  const store = await openTemp();
  const flow = await store.begin({ serverId: SERVER, clientId: 'c', redirectUri: 'http://127.0.0.1:1/cb' });
  assert.equal(flow.info.status, 'pending');
  assert.equal((await store.check(flow.state)).serverId, SERVER);
  const consumed = await store.consumeFor(flow.state, SERVER);
  assert.equal(consumed.verifier.length, 43);
  const replay = await rejects(store.consume(flow.state), ErrorCode.ALREADY_CONSUMED);
  assert.ok(!replay.message.includes(flow.state));
  await rejects(store.consume('never-begun-state'), ErrorCode.UNKNOWN_STATE);
  const bad = await rejects(store.consume('not printable \u0001'), ErrorCode.INVALID_INPUT);
  assert.equal(bad.field, 'state');
  await rejects(store.consume(42), ErrorCode.INVALID_INPUT);
  const stats = await store.stats();
  assert.equal(stats.counts.consumed, 1);
});

test('the SDK path: save, promote, pendingVerifier; two in progress is the ambiguity error', async () => {
  const store = await openTemp();
  const url = (verifierChallenge, state) =>
    `https://auth.example.com/authorize?response_type=code&client_id=c&state=${state}` +
    `&code_challenge=${verifierChallenge}&code_challenge_method=S256`;
  const v1 = 'a'.repeat(43);
  const v2 = 'b'.repeat(43);
  const c1 = await store.saveCodeVerifier(SERVER, 'c', v1);
  await rejects(store.pendingVerifier(SERVER, 'c'), ErrorCode.NO_PENDING_VERIFIER);
  await store.promote(SERVER, 'c', url(c1, 'state-one'));
  assert.equal(await store.pendingVerifier(SERVER, 'c'), v1);
  const c2 = await store.saveCodeVerifier(SERVER, 'c', v2);
  await rejects(store.saveCodeVerifier(SERVER, 'c', v2), ErrorCode.DUPLICATE_CHALLENGE);
  await store.promote(SERVER, 'c', new URL(url(c2, 'state-two')));
  const many = await rejects(store.pendingVerifier(SERVER, 'c'), ErrorCode.AMBIGUOUS_PENDING_VERIFIER);
  assert.equal(many.count, 2);
  await rejects(store.promote(SERVER, 'c', 'https://auth.example.com/authorize?state=x'), ErrorCode.MISSING_PARAMETER);
  assert.equal((await store.consume('state-two')).verifier, v2);
  assert.equal(await store.invalidate(SERVER, 'c', 'live'), 1);
  await rejects(store.invalidate(SERVER, 'c', 'everything'), ErrorCode.INVALID_INPUT);
  assert.equal((await store.sweep()).removed.pending, 0);
});

test('an error callback ends the flow: AUTHORIZATION_FAILED with the error, no secret', async () => {
  const store = await openTemp();
  const flow = await store.begin({ serverId: SERVER });
  await store.reject(flow.state, 'access_denied', 'the user said no');
  const err = await rejects(store.consume(flow.state), ErrorCode.AUTHORIZATION_FAILED);
  assert.equal(err.error, 'access_denied');
  assert.ok(!err.message.includes(flow.state));
});

test('a pending wait leaves the event loop free, and an AbortSignal stops it', async () => {
  const store = await openTemp();
  const callback = await attach(store, { port: 0 });
  const flow = await store.begin({ serverId: SERVER, redirectUri: callback.redirectUri });
  const order = [];
  const controller = new AbortController();
  const waiting = callback
    .wait(flow.state, { timeoutMs: 20_000, signal: controller.signal })
    .then(() => order.push('wait: resolved'), (err) => order.push(`wait: ${err.code}`));
  // With the loop blocked by the wait, this timer could only fire after the wait settled.
  await new Promise((resolve) => setTimeout(resolve, 50));
  order.push('timer');
  controller.abort();
  await waiting;
  assert.deepEqual(order, ['timer', 'wait: ABORTED']);
  // The flow was not consumed by the aborted wait.
  assert.equal((await store.check(flow.state)).status, 'pending');
  await rejects(callback.wait(flow.state, { signal: AbortSignal.abort() }), ErrorCode.ABORTED);
});

test('a callback on the listener completes the wait with the code', async () => {
  const store = await openTemp();
  const callback = await attach(store, { port: 0 });
  assert.equal(callback.holdsPort, true);
  const flow = await store.begin({ serverId: SERVER, redirectUri: callback.redirectUri });
  const waiting = callback.wait(flow.state, { timeoutMs: 20_000 });
  const status = await get(`${callback.redirectUri}?state=${flow.state}&code=the-code`);
  assert.equal(status, 200);
  const done = await waiting;
  assert.equal(done.code, 'the-code');
  assert.equal(done.verifier.length, 43);
  await rejects(callback.wait(flow.state, { timeoutMs: 1000 }), ErrorCode.ALREADY_CONSUMED);
  const other = await store.begin({ serverId: SERVER, redirectUri: callback.redirectUri });
  await rejects(callback.wait(other.state, { timeoutMs: 0 }), ErrorCode.CALLBACK_TIMEOUT);
});

test('a port held by another program is PORT_IN_USE at once, naming the port', async () => {
  const holder = spawn(process.execPath, [
    '-e',
    "const s=require('net').createServer(c=>c.end()).listen(0,'127.0.0.1',()=>console.log(s.address().port))",
  ]);
  try {
    const port = await new Promise((resolve, reject) => {
      holder.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      holder.once('exit', () => reject(new Error('the port holder exited')));
    });
    const store = await openTemp();
    const err = await rejects(attach(store, { port }), ErrorCode.PORT_IN_USE);
    assert.equal(err.port, port);
    assert.equal(err.holder, 'other');
    assert.ok(err.message.includes(String(port)), err.message);
  } finally {
    holder.kill();
  }
});

// Another program, in python3 (it sets no SO_REUSEADDR, where Node's servers do): it serves one
// connection on a port, closes it first and exits, so only its TIME_WAIT keeps the port.
function python(code, args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', code, ...args.map(String)]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (status) => (status === 0 ? resolve(out.trim()) : reject(new Error(`python3 exited ${status}`))));
  });
}

test('a port kept only by connections another program left is taken once free, and says so', async (t) => {
  if (process.platform !== 'linux') {
    t.skip('the lingering-connection check reads Linux\'s socket table');
    return;
  }
  const [port, clientPort] = (
    await python(`
import socket, time
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
port = srv.getsockname()[1]
# The client's port is below the ephemeral range, so no other connection takes it before the
# test binds it again to end the TIME_WAIT early.
low = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[0])
for p in range(10000, low):
    cli = socket.socket()
    try:
        cli.bind(('127.0.0.1', p)); break
    except OSError:
        cli.close()
cli.connect(('127.0.0.1', port))
conn, _ = srv.accept()
client_port = cli.getsockname()[1]
conn.close(); time.sleep(0.2); cli.close(); srv.close()
print(port, client_port)
`)
  )
    .split(' ')
    .map(Number);
  const store = await openTemp();
  const callback = await attach(store, { port });
  assert.equal(callback.holdsPort, false);
  const delay = callback.portDelay;
  assert.ok(delay, 'a lingering port has a delay');
  assert.equal(delay.port, port);
  assert.ok(delay.freeInMs > 20_000, `free in ${delay.freeInMs} ms`);
  assert.ok(delay.message.includes(String(port)), delay.message);
  // The peer's port connects again: the TIME_WAIT ends at once, and the listener takes the port.
  await python(
    `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[2])))
try: s.connect(('127.0.0.1', int(sys.argv[1])))
except OSError: pass
s.close()
`,
    [port, clientPort],
  );
  const until = Date.now() + 10_000;
  while (!callback.holdsPort) {
    assert.ok(Date.now() < until, 'the listener never took the port');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(callback.portDelay, null);
});

test('Store.openDefault() creates the default directory 0700 and the file 0600', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-home-'));
  const env = { ...process.env, HOME: home };
  delete env.OAUTH_STATE_DB;
  delete env.XDG_STATE_HOME;
  const openDefault = (extra, options) => {
    const run = spawnSync(process.execPath, [openDefaultScript, ...(options ? [JSON.stringify(options)] : [])], {
      env: { ...env, ...extra },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout);
  };
  // A fresh account: no ~/.local/state yet. Store.open on that path fails; openDefault works.
  const file = path.join(home, '.local', 'state', 'oauth-state-store', 'flows.db');
  await rejects(Store.open(file), ErrorCode.STORAGE);
  assert.deepEqual(openDefault({}), { path: file, dirMode: 0o700, fileMode: 0o600, verifierLength: 43 });
  // OAUTH_STATE_DB wins, as for the command line.
  const elsewhere = path.join(home, 'elsewhere', 'flows.db');
  assert.equal(openDefault({ OAUTH_STATE_DB: elsewhere }, { ttlSeconds: 60 }).path, elsewhere);
});

test('a plain-http issuer off loopback is refused at promote, saying why', async () => {
  const store = await openTemp();
  const challenge = await store.saveCodeVerifier(SERVER, 'c', 'd'.repeat(43));
  const url = `https://auth.example.com/authorize?state=s1&code_challenge=${challenge}`;
  const err = await rejects(store.promote(SERVER, 'c', url, { issuer: 'http://auth.example.com' }), ErrorCode.INVALID_INPUT);
  assert.equal(err.field, 'issuer');
  assert.match(err.message, /RFC 8414/);
  assert.match(err.message, /https/);
  assert.match(err.message, /loopback/);
  // Loopback is the exception (a local test server), and nothing was bound by the refusal.
  await store.promote(SERVER, 'c', url, { issuer: 'http://127.0.0.1:8080' });
  assert.equal((await store.check('s1')).issuer, 'http://127.0.0.1:8080');
});

// The MCP TypeScript SDK's refresh (v1 and v2, their own auth()) made single-flight across real
// Node processes by withSharedTokens, against an authorization server that rotates refresh
// tokens and revokes the whole grant when a rotated one comes back (oidc-provider, one server
// process per scenario: test/support/rotating-server.mjs). Each scenario: a login's tokens are
// saved in a store file; the access token expires; N processes each run auth() at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Store } from 'oauth-state-store';
import { startClient } from './support/processes.mjs';
import { startCluster } from './support/postgres.mjs';

const PROCESSES = 8;
const support = (name) => fileURLToPath(new URL(`./support/${name}`, import.meta.url));

/**
 * A fresh rotating authorization server process, signed in once: its first line. Its access
 * tokens live 2 s; those a refresh issues live `refreshedTtl` seconds.
 */
async function startRotatingServer(refreshedTtl = 2) {
  const args = [support('rotating-server.mjs'), '2', String(refreshedTtl)];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the authorization server exited (${code}): ${stderr}`)));
  });
  const info = JSON.parse(first);
  return {
    ...info,
    async stats() {
      return (await fetch(`${info.issuer}/stats`)).json();
    },
    /** A refresh outside the store, with `refreshToken`: the HTTP status. */
    async refreshWith(refreshToken) {
      const res = await fetch(info.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: info.clientId }),
      });
      await res.arrayBuffer();
      return res.status;
    },
    close() {
      child.stdin.end();
      return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}

/** One PostgreSQL server for this file's PostgreSQL scenarios, started by the first of them. */
let cluster;
let databases = 0;
after(() => cluster?.stop?.());

/**
 * Where a scenario's store lives: a fresh file, or a fresh database on the test server (null
 * when PostgreSQL is missing and not required: the test is then skipped, saying why).
 */
async function freshStore(engine, t) {
  if (engine === 'file') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-refresh-'));
    return path.join(dir, 'flows.db');
  }
  cluster ??= await startCluster();
  if (cluster.skip) {
    t.skip(cluster.skip);
    return null;
  }
  databases += 1;
  return cluster.createDatabase(`refresh_${databases}`);
}

const digest = (token) => crypto.createHash('sha256').update(token).digest('hex');

/**
 * The scenario: the login's tokens in a fresh store, expired; `PROCESSES` processes of `sdk`,
 * each having read the stored set, run auth() at one instant. Resolves with what the server
 * counted, what each process ended with, and the stored set.
 */
async function scenario(sdk, mode, { processes = PROCESSES, cmd = 'refresh', db } = {}) {
  // The refreshed token outlives the slowest process: a late one gets it as it is.
  const server = await startRotatingServer(60);
  db ??= await freshStore('file');
  const store = await Store.open(db);
  const clients = [];
  try {
    // What the SDK would have saved after the login, stamped with the server's issuer.
    await store.saveTokens(server.issuer, server.clientId, { ...server.tokens, issuer: server.issuer });
    const saved = await store.tokens(server.issuer, server.clientId);
    const config = { sdk, mode, db, serverUrl: server.issuer, serverId: server.issuer, clientId: server.clientId };
    for (let i = 0; i < processes; i += 1) clients.push(startClient(config, support('refresh-client.mjs')));
    // Every process has read generation 1 before any refreshes.
    for (const loaded of await Promise.all(clients.map((c) => c.send({ cmd: 'load' })))) {
      assert.deepEqual(loaded, { loaded: true });
    }
    // The access token has expired (oidc-provider's clock tolerance is 0 here).
    await sleep(Math.max(0, saved.expiresAt - Date.now()) + 1100);
    const before = await server.stats();
    const results = await Promise.all(clients.map((c) => c.send({ cmd })));
    const after = await server.stats();
    const stored = await store.tokens(server.issuer, server.clientId);
    // Is the grant still alive? One more refresh with the stored refresh token.
    const further = stored?.refreshToken ? await server.refreshWith(stored.refreshToken) : undefined;
    return {
      refreshRequests: (after.requests.refresh_token ?? 0) - (before.requests.refresh_token ?? 0),
      stats: after,
      results,
      stored,
      further,
      stderr: clients.map((c) => c.stderr()).join(''),
    };
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    await server.close();
  }
}

for (const [sdk, engine] of [['v1', 'file'], ['v2', 'file'], ['v1', 'postgres'], ['v2', 'postgres']]) {
  test(`SDK ${sdk}, ${engine}: ${PROCESSES} processes refresh an expired token: one request, all get it, the grant lives`, async (t) => {
    const db = await freshStore(engine, t);
    if (!db) return;
    const opened = await Store.open(db);
    assert.equal(opened.path, engine === 'postgres' ? undefined : db, 'the store is on the engine named');
    const run = await scenario(sdk, 'shared', { db });
    const detail = JSON.stringify({ stats: run.stats, results: run.results, stderr: run.stderr });
    assert.equal(run.refreshRequests, 1, `exactly one refresh request reached the server: ${detail}`);
    assert.deepEqual(run.stats.errors, {}, detail);
    assert.equal(run.stats.revoked, 0, detail);
    assert.equal(run.stored.generation, 2, detail);
    for (const r of run.results) {
      assert.equal(r.result, 'AUTHORIZED', detail);
      assert.equal(r.redirected, 0, detail);
      assert.equal(r.access, digest(run.stored.accessToken), `every process holds the new access token: ${detail}`);
    }
    assert.equal(run.further, 200, 'the grant still works: a further refresh succeeds');
  });
}

for (const sdk of ['v1', 'v2']) {
  test(`SDK ${sdk} transport: 4 processes whose MCP request is refused for the expired token make one refresh request`, async () => {
    const run = await scenario(sdk, 'shared', { processes: 4, cmd: 'call' });
    const detail = JSON.stringify({ stats: run.stats, results: run.results, stderr: run.stderr });
    assert.equal(run.refreshRequests, 1, `exactly one refresh request reached the server: ${detail}`);
    // A process that reads the tokens after the refresh sends the new one at once: no 401.
    assert.ok(run.stats.mcp.unauthorized >= 1, `the expired token was refused: ${detail}`);
    assert.equal(run.stats.mcp.ok, 4, `every retry was answered: ${detail}`);
    assert.equal(run.stats.revoked, 0, detail);
    for (const r of run.results) {
      assert.equal(r.result, 'answered', detail);
      assert.equal(r.access, digest(run.stored.accessToken), detail);
    }
    assert.equal(run.further, 200, 'the grant still works: a further refresh succeeds');
  });

  test(`SDK ${sdk}, control: the same processes refreshing each on its own lose the grant`, async () => {
    const run = await scenario(sdk, 'alone');
    const detail = JSON.stringify({ stats: run.stats, results: run.results });
    assert.ok(run.refreshRequests >= 2, `several refresh requests: ${detail}`);
    assert.ok(run.stats.revoked >= 1, `the server revoked the grant: ${detail}`);
    assert.ok(run.further === undefined || run.further === 400, `the grant is dead: ${run.further}`);
    assert.ok(run.results.some((r) => r.result !== 'AUTHORIZED'), `a process had to sign in again: ${detail}`);
  });
}

test('a stale invalid_grant in another process never deletes the newer set; a current one clears it', async () => {
  const server = await startRotatingServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-refresh-'));
  const db = path.join(dir, 'flows.db');
  const store = await Store.open(db);
  const config = { sdk: 'v1', mode: 'shared', db, serverUrl: server.issuer, serverId: server.issuer, clientId: server.clientId };
  const [a, b] = [startClient(config, support('refresh-client.mjs')), startClient(config, support('refresh-client.mjs'))];
  try {
    await store.saveTokens(server.issuer, server.clientId, { ...server.tokens, issuer: server.issuer });
    const first = await store.tokens(server.issuer, server.clientId);
    assert.deepEqual(await b.send({ cmd: 'load' }), { loaded: true }); // B holds generation 1
    await sleep(Math.max(0, first.expiresAt - Date.now()) + 1100);
    assert.equal((await a.send({ cmd: 'refresh' })).result, 'AUTHORIZED'); // A saves generation 2
    const second = await store.tokens(server.issuer, server.clientId);
    assert.equal(second.generation, 2);
    // B presents generation 1's refresh token outside the store: the server refuses it (and,
    // seeing a rotated token again, revokes the grant); B's SDK then gives up its tokens.
    assert.equal(await server.refreshWith(first.refreshToken), 400);
    assert.deepEqual(await b.send({ cmd: 'invalidate' }), { invalidated: true });
    const kept = await store.tokens(server.issuer, server.clientId);
    assert.equal(kept?.generation, 2, 'generation 2 is still stored');
    assert.equal(kept.accessToken, second.accessToken);
    // The grant is dead at the server: A's refresh of generation 2 is refused, and that
    // refusal, for the stored generation, clears the set.
    await sleep(Math.max(0, second.expiresAt - Date.now()) + 1100);
    const refused = await a.send({ cmd: 'refresh' });
    assert.notEqual(refused.result, 'AUTHORIZED', JSON.stringify(refused));
    assert.equal(await store.tokens(server.issuer, server.clientId), undefined, 'the current refusal revoked the set');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await server.close();
  }
});

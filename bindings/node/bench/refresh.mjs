// What withSharedTokens adds to one refresh: sequential rotating refreshes against oidc-provider
// on loopback (test/support/rotating-server.mjs), each sent either with the plain fetch or
// through the wrapper's fetch (begin: a read and the lease's write transaction; the request;
// finish: the compare-and-swap write), one process, the same server in the same round. A fresh
// server per round (its in-memory store holds 1000 entries); the two kinds alternate their
// order by round. Prints a table. `npm run bench:refresh` (after `npm run build`); REFRESHES and
// ROUNDS in the environment change the sizes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Store, withSharedTokens } from '../index.mjs';

const REFRESHES = Number(process.env.REFRESHES ?? 100);
const WARMUP = 10;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const server = fileURLToPath(new URL('../test/support/rotating-server.mjs', import.meta.url));

async function startServer() {
  const child = spawn(process.execPath, [server, '3600'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the authorization server exited (${code})`)));
  });
  return { ...JSON.parse(first), stop: () => child.stdin.end() };
}

const form = (as, refreshToken) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: as.clientId }),
});

/** Sequential refreshes with the plain fetch: microseconds each. */
async function plain(as, state) {
  const micros = [];
  for (let i = 0; i < WARMUP + REFRESHES; i += 1) {
    const t = process.hrtime.bigint();
    const res = await fetch(as.tokenEndpoint, form(as, state.refreshToken));
    const json = await res.json();
    const us = Number(process.hrtime.bigint() - t) / 1000;
    if (!res.ok) throw new Error(`plain refresh refused: ${json.error}`);
    state.refreshToken = json.refresh_token;
    if (i >= WARMUP) micros.push(us);
  }
  return micros;
}

/** Sequential refreshes through withSharedTokens's fetch: microseconds each. */
async function wrapped(as, state, store) {
  await store.saveTokens(as.issuer, as.clientId, {
    access_token: state.accessToken,
    token_type: 'Bearer',
    refresh_token: state.refreshToken,
    expires_in: 3600,
  });
  const provider = withSharedTokens({}, { store, serverId: as.issuer, clientId: as.clientId });
  const micros = [];
  for (let i = 0; i < WARMUP + REFRESHES; i += 1) {
    const presented = (await provider.tokens()).refresh_token;
    const t = process.hrtime.bigint();
    const res = await provider.fetch(new URL(as.tokenEndpoint), form(as, presented));
    const json = await res.json();
    const us = Number(process.hrtime.bigint() - t) / 1000;
    if (!res.ok) throw new Error(`wrapped refresh refused: ${json.error}`);
    if (i >= WARMUP) micros.push(us);
  }
  const stored = await store.tokens(as.issuer, as.clientId);
  state.refreshToken = stored.refreshToken;
  state.accessToken = stored.accessToken;
  return micros;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const stats = (micros) => {
  const s = [...micros].sort((a, b) => a - b);
  return { min: s[0], p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99) };
};

const all = { plain: [], wrapped: [] };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-bench-refresh-'));
for (let round = 0; round < ROUNDS; round += 1) {
  const as = await startServer();
  const store = await Store.open(path.join(dir, `round-${round}.db`));
  const state = { accessToken: as.tokens.access_token, refreshToken: as.tokens.refresh_token };
  const order = round % 2 === 0 ? ['plain', 'wrapped'] : ['wrapped', 'plain'];
  for (const kind of order) {
    all[kind].push(...(kind === 'plain' ? await plain(as, state) : await wrapped(as, state, store)));
  }
  as.stop();
}

const p = stats(all.plain);
const w = stats(all.wrapped);
const f = (us) => `${(us / 1000).toFixed(2)} ms`;
console.log(`Refresh through withSharedTokens's fetch against the plain fetch: ${ROUNDS} rounds x ${REFRESHES} sequential refreshes, oidc-provider on loopback, one process`);
console.log('');
console.log('| path | min | p50 | p90 | p99 |');
console.log('|---|---|---|---|---|');
console.log(`| plain fetch (the bare token request) | ${f(p.min)} | ${f(p.p50)} | ${f(p.p90)} | ${f(p.p99)} |`);
console.log(`| withSharedTokens fetch (lease, request, finish) | ${f(w.min)} | ${f(w.p50)} | ${f(w.p90)} | ${f(w.p99)} |`);
console.log(`| added | ${f(w.min - p.min)} | ${f(w.p50 - p.p50)} | | |`);
console.log('');
console.log(`p50 ratio wrapped/plain: ${(w.p50 / p.p50).toFixed(2)}; min ratio: ${(w.min / p.min).toFixed(2)}`);

// The cost of crossing N-API: one SDK-path flow (saveCodeVerifier + promote + consume, three
// write transactions) through the binding, against the same flow called from Rust
// (examples/sdk_flow.rs), on fresh store files in the same directory, alternating rounds.
// Prints a table; BENCHMARKS.md records a run. `npm run bench` (after `npm run build`).
// FLOWS and ROUNDS in the environment change the sizes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store, generateState } from '../index.mjs';

const FLOWS = Number(process.env.FLOWS ?? 2000);
const WARMUP = 200;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SERVER = 'https://mcp.example.com/mcp';
const CLIENT = 'bench-client';
const crate = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-bench-'));
let files = 0;
const freshDb = () => path.join(dir, `flows-${(files += 1)}.db`);

async function flow(store) {
  const verifier = generateState(); // 43 base64url characters: a valid S256 verifier
  const state = generateState();
  const challenge = await store.saveCodeVerifier(SERVER, CLIENT, verifier);
  const url =
    `https://auth.example.com/authorize?response_type=code&client_id=${CLIENT}` +
    `&redirect_uri=http%3A%2F%2F127.0.0.1%3A33418%2Fcallback&state=${state}` +
    `&code_challenge=${challenge}&code_challenge_method=S256`;
  await store.promote(SERVER, CLIENT, url);
  await store.consume(state);
}

async function nodeRound() {
  const store = await Store.open(freshDb());
  for (let i = 0; i < WARMUP; i += 1) await flow(store);
  const micros = [];
  for (let i = 0; i < FLOWS; i += 1) {
    const start = process.hrtime.bigint();
    await flow(store);
    micros.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return micros;
}

// The addon's build (`napi build`) names the host target explicitly; so does this, to reuse its
// compiled dependencies.
const host = /^host: (.+)$/m.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1];

function rustRound() {
  const out = execFileSync(
    'cargo',
    ['run', '--quiet', '--release', '--target', host, '-p', 'oauth-state-store-node', '--example', 'sdk_flow', '--',
      freshDb(), String(FLOWS), String(WARMUP)],
    { cwd: crate, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(out).micros;
}

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p90: q(0.9), mean: s.reduce((a, b) => a + b, 0) / s.length };
};

const all = { rust: [], node: [] };
for (let r = 0; r < ROUNDS; r += 1) {
  all.rust.push(...rustRound());
  all.node.push(...(await nodeRound()));
}
const rust = stat(all.rust);
const node = stat(all.node);
const f = (x) => x.toFixed(1).padStart(8);
console.log(`SDK-path flow (save + promote + consume), ${ROUNDS} rounds x ${FLOWS} flows each, µs per flow`);
console.log('| path                 |   median |      p90 |     mean |');
console.log('|----------------------|----------|----------|----------|');
console.log(`| Rust (core, direct)  | ${f(rust.median)} | ${f(rust.p90)} | ${f(rust.mean)} |`);
console.log(`| Node (N-API binding) | ${f(node.median)} | ${f(node.p90)} | ${f(node.mean)} |`);
console.log(`| crossing cost        | ${f(node.median - rust.median)} | ${f(node.p90 - rust.p90)} | ${f(node.mean - rust.mean)} |`);
console.log(`node/rust median ratio: ${(node.median / rust.median).toFixed(2)}x`);
fs.rmSync(dir, { recursive: true, force: true });

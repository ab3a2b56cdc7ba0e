// Every exported call given wrongly typed arguments that carry a canary (what a repeated
// `?state=` in an Express query, a Buffer, or an object gives): each is a typed error, and the
// canary appears in none of its message, stack or util.inspect. Options objects with a wrong
// type or an unknown field are INVALID_INPUT naming the field, never silently the default.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { Store, attach, withSharedFlows, generateState, ErrorCode, StoreError } from 'oauth-state-store';

// Shaped like a state (43 base64url characters), which is what would leak in practice.
const CANARY = `canary${crypto.randomBytes(28).toString('base64url')}`.slice(0, 43);
const SERVER = 'https://mcp.example.com';

/** Values of a wrong type, each carrying the canary one way or another (numbers cannot). */
function wrongValues() {
  return [
    ['array of the canary', [CANARY, CANARY]],
    ['one-element array', [CANARY]],
    ['object', { value: CANARY, [CANARY]: CANARY }],
    ['Buffer', Buffer.from(CANARY)],
    ['Uint8Array', new TextEncoder().encode(CANARY)],
    ['boxed string', new String(CANARY)], // eslint-disable-line no-new-wrappers
    ['object with toString', { toString: () => CANARY, valueOf: () => CANARY }],
    ['Map', new Map([[CANARY, CANARY]])],
    ['Set', new Set([CANARY])],
    ['function', function canaryCarrier() { return CANARY; }],
    ['Symbol', Symbol(CANARY)],
    ['Error', new Error(CANARY)],
    ['URLSearchParams', new URLSearchParams({ state: CANARY })],
    ['number', 4242],
    ['NaN', Number.NaN],
    ['boolean', true],
    ['bigint', 42n],
  ];
}

let dir;
let store;
let callback;
let provider;
let flowState;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-'));
  // Store.openDefault() is among the calls: its default path goes in this test's directory.
  process.env.OAUTH_STATE_DB = path.join(dir, 'default', 'flows.db');
  store = await Store.open(path.join(dir, 'flows.db'));
  callback = await attach(store, { port: 0, idleStopSeconds: 60 });
  provider = withSharedFlows({ redirectToAuthorization() {} }, { store, serverId: SERVER, clientId: 'c' });
  flowState = (await store.begin({ serverId: SERVER })).state;
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const VERIFIER = 'v'.repeat(43);
const URL_OK = 'https://auth.example.com/authorize?state=s&code_challenge=' + 'c'.repeat(43);

const OPEN = ['ttlSeconds', 'busyTimeoutMs', 'poolSize', 'durability', 'lockWait', 'relaxedFileChecks', 'createIfMissing', 'readOnly'];
const BEGIN = ['serverId', 'clientId', 'redirectUri', 'issuer', 'resource', 'scope', 'ttlSeconds'];
const PROMOTE = ['issuer', 'requireIssuer', 'discovery'];
const ATTACH = ['port', 'path', 'idleStopSeconds'];
const WAIT = ['timeoutMs', 'signal'];

/**
 * Each call with valid arguments: [name, args, run(args), options], where `options` maps the
 * index of an options argument to its fields and whether a field it does not know is refused
 * (callback parameters may carry more of the redirect's query, so they are not strict).
 */
function calls() {
  return [
    ['Store.open', [path.join(dir, 'flows.db'), {}], (a) => Store.open(...a), { 1: [OPEN, true] }],
    ['Store.openDefault', [{}], (a) => Store.openDefault(...a), { 0: [OPEN, true] }],
    ['store.begin', [{ serverId: SERVER }], (a) => store.begin(...a), { 0: [BEGIN, true] }],
    ['store.saveCodeVerifier', [SERVER, 'c', VERIFIER], (a) => store.saveCodeVerifier(...a)],
    ['store.promote', [SERVER, 'c', URL_OK, {}], (a) => store.promote(...a), { 3: [PROMOTE, true] }],
    ['store.check', [flowState], (a) => store.check(...a)],
    ['store.consume', [flowState], (a) => store.consume(...a)],
    ['store.consumeFor', [flowState, SERVER], (a) => store.consumeFor(...a)],
    ['store.consumePending', [SERVER, 'c'], (a) => store.consumePending(...a)],
    ['store.pendingDiscovery', [SERVER, 'c'], (a) => store.pendingDiscovery(...a)],
    ['store.complete', [flowState, 'code'], (a) => store.complete(...a)],
    ['store.reject', [flowState, 'access_denied', 'no'], (a) => store.reject(...a)],
    ['store.pendingVerifier', [SERVER, 'c'], (a) => store.pendingVerifier(...a)],
    ['store.invalidate', [SERVER, 'c', 'live'], (a) => store.invalidate(...a)],
    ['attach', [store, { port: 0 }], (a) => attach(...a), { 1: [ATTACH, true] }],
    ['callback.wait', [flowState, { timeoutMs: 0 }], (a) => callback.wait(...a), { 1: [WAIT, true] }],
    ['withSharedFlows', [{ redirectToAuthorization() {} }, { store, serverId: SERVER }], (a) => withSharedFlows(...a),
      { 1: [['store', 'serverId', 'clientId'], true] }],
    ['provider.forCallback', [{ state: flowState, code: 'code', iss: 'https://as.example.com' }], (a) => provider.forCallback(...a),
      { 0: [['state', 'code', 'iss'], false] }],
    ['provider.waitForCallback', [callback, flowState, { timeoutMs: 0 }], (a) => provider.waitForCallback(...a), { 2: [WAIT, true] }],
    ['provider.saveCodeVerifier', [VERIFIER], (a) => provider.saveCodeVerifier(...a)],
    ['provider.redirectToAuthorization', [new URL(URL_OK)], (a) => provider.redirectToAuthorization(...a)],
    ['provider.invalidateCredentials', ['tokens'], (a) => provider.invalidateCredentials(...a)],
  ];
}

/** Where a value of the wrong type may go: each argument, and each field of an options object. */
function positions(args, options = {}) {
  const out = [];
  args.forEach((arg, i) => {
    out.push({ where: `argument ${i}`, put: (v) => args.map((a, j) => (j === i ? v : a)) });
    const [fields, strict] = options[i] ?? [[], false];
    for (const field of strict ? [...fields, 'bogusField'] : fields) {
      out.push({
        where: `argument ${i}.${field}`,
        put: (v) => args.map((a, j) => (j === i ? { ...a, [field]: v } : a)),
      });
    }
  });
  return out;
}

// Fields for which a number or a boolean is the right type: those values are not wrong there.
const NUMERIC = new Set(['ttlSeconds', 'busyTimeoutMs', 'poolSize', 'port', 'idleStopSeconds', 'timeoutMs']);
const BOOLEAN = new Set(['relaxedFileChecks', 'createIfMissing', 'readOnly', 'requireIssuer']);

function rightType(where, kind) {
  const field = where.split('.')[1];
  return (kind === 'number' && NUMERIC.has(field)) || (kind === 'boolean' && BOOLEAN.has(field));
}

async function outcome(run) {
  try {
    const value = await run();
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  }
}

function assertClean(err, label) {
  const texts = [String(err?.message), String(err?.stack), util.inspect(err, { depth: 8, showHidden: true })];
  for (const text of texts) {
    assert.ok(!text.includes(CANARY), `${label}: the canary leaked:\n${text}`);
  }
}

test('every call with a wrongly typed argument or option field is INVALID_INPUT, without the value', async () => {
  let tried = 0;
  let refused = 0;
  for (const [name, args, run, options] of calls()) {
    for (const { where, put } of positions(args, options)) {
      for (const [kind, value] of wrongValues()) {
        if (rightType(where, kind)) continue;
        const label = `${name} ${where} = ${kind}`;
        const got = await outcome(() => run(put(value)));
        tried += 1;
        if (got.ok) {
          assert.fail(`${label}: accepted a value of the wrong type`);
        }
        refused += 1;
        assertClean(got.error, label);
        assert.ok(got.error instanceof StoreError, `${label}: a StoreError, got ${got.error?.name}: ${got.error?.message}`);
        assert.equal(got.error.code, ErrorCode.INVALID_INPUT, `${label}: ${got.error.message}`);
        assert.equal(typeof got.error.field, 'string', `${label}: names the field`);
      }
    }
  }
  assert.ok(tried > 1000, `tried ${tried} calls`);
  assert.equal(refused, tried);
});

test('the field named is the one at fault', async () => {
  const wait = await outcome(() => callback.wait(flowState, { timeout: 5000 }));
  assert.equal(wait.error?.code, ErrorCode.INVALID_INPUT);
  assert.equal(wait.error.field, 'timeout', 'an unknown option is named, not ignored');
  const number = await outcome(() => callback.wait(flowState, 5000));
  assert.equal(number.error?.code, ErrorCode.INVALID_INPUT, 'a number where the options go');
  assert.equal(number.error.field, 'options');
  const signal = await outcome(() => provider.waitForCallback(callback, flowState, { signal: {} }));
  assert.equal(signal.error?.field, 'signal');
  const state = await outcome(() => store.consume([flowState, flowState]));
  assert.equal(state.error?.field, 'state');
  assertClean(state.error, 'repeated state');
  assert.ok(!state.error.message.includes(flowState), 'the real state is not in the message either');
  const open = await outcome(() => Store.open(path.join(dir, 'flows.db'), { busyTimeout: 10 }));
  assert.equal(open.error?.field, 'busyTimeout');
  // The flow was never touched by any of the refused calls.
  assert.equal((await store.check(flowState)).status, 'pending');
});

test('a value that only looks like the right type is refused, not converted', async () => {
  for (const [label, run] of [
    ['state as String object', () => store.consume(new String(generateState()))], // eslint-disable-line no-new-wrappers
    ['code as a number', () => store.complete(flowState, 12345)],
    ['port as a string', () => attach(store, { port: '0' })],
    ['ttl as a string', () => Store.open(path.join(dir, 'flows.db'), { ttlSeconds: '60' })],
    ['ttl fractional', () => Store.open(path.join(dir, 'flows.db'), { ttlSeconds: 1.5 })],
    ['ttl negative', () => Store.open(path.join(dir, 'flows.db'), { ttlSeconds: -1 })],
  ]) {
    const got = await outcome(run);
    assert.equal(got.error?.code, ErrorCode.INVALID_INPUT, `${label}: ${got.error?.message ?? 'accepted'}`);
  }
  assert.equal((await store.check(flowState)).status, 'pending');
});

// One list of error codes: the binding's (bindings/node/src/error.rs, exported as
// errorCodes()) is where ErrorCode and index.d.ts's type come from; this checks that both, and
// the README, say the same. (The Rust test `every_core_variant_has_its_code` checks that every
// variant of the core's Error is in the list.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ErrorCode } from 'oauth-state-store';
import { addon, packageFile } from './support/package.mjs';

const native = addon();
const read = (file) => fs.readFileSync(packageFile(file), 'utf8');

test('ErrorCode has every code the binding emits, among them the storage and engine ones', () => {
  const list = native.errorCodes();
  assert.deepEqual(Object.keys(ErrorCode), list);
  for (const code of list) assert.equal(ErrorCode[code], code);
  for (const code of ['MIGRATION_NEEDED', 'NOT_A_STORE', 'PERMISSION_DENIED', 'UNAVAILABLE', 'COMMIT_OUTCOME_UNKNOWN']) {
    assert.ok(list.includes(code), code);
  }
  assert.ok(Object.isFrozen(ErrorCode));
});

test('index.d.ts declares exactly that list (npm run codes writes it)', () => {
  const dts = read('index.d.ts');
  const block = dts.match(/export declare const ErrorCode: \{([^}]*)\};/);
  assert.ok(block, 'index.d.ts declares ErrorCode');
  const declared = [...block[1].matchAll(/readonly (\w+): '(\w+)';/g)].map(([, k, v]) => {
    assert.equal(k, v);
    return k;
  });
  assert.deepEqual(declared, native.errorCodes(), 'index.d.ts differs from the list: run `npm run codes`');
});

test('the README lists every code', () => {
  const readme = read('README.md');
  for (const code of native.errorCodes()) assert.ok(readme.includes(`\`${code}\``), `README lacks ${code}`);
});

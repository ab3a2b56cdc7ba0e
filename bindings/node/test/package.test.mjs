// Which copy of the package the tests load, and where its addon comes from. Without this, a
// mistake could run the tests of an installed package against the checkout and still pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { inCheckout, manifest, packageFile, packageRoot } from './support/package.mjs';

const require = createRequire(import.meta.url);
const { PREBUILT, detectLibc, platformName } = require(packageFile('lib/platform.cjs'));
const expected = fs.realpathSync(process.env.OSS_PACKAGE_UNDER_TEST ?? fileURLToPath(new URL('..', import.meta.url)));

test('the name oauth-state-store resolves to the package under test, from ES modules and CommonJS', () => {
  const esm = fileURLToPath(import.meta.resolve('oauth-state-store'));
  assert.equal(fs.realpathSync(path.dirname(esm)), expected);
  assert.equal(fs.realpathSync(packageRoot), expected);
});

test('the addon is the build from source in a checkout, the platform package when installed', () => {
  const name = platformName({ platform: process.platform, arch: process.arch, libc: detectLibc() });
  const builds = fs.readdirSync(packageRoot).filter((f) => f.endsWith('.node'));
  if (inCheckout) {
    assert.ok(builds.includes(`oauth-state-store.${name}.node`), `npm run build made no addon for ${name}: ${builds}`);
    return;
  }
  assert.deepEqual(builds, [], 'the main package ships no addon');
  assert.ok(PREBUILT.includes(name), `${name} is a prebuilt platform`);
  const platformPackage = `oauth-state-store-${name}`;
  const installed = createRequire(packageFile('package.json')).resolve(`${platformPackage}/package.json`);
  assert.equal(JSON.parse(fs.readFileSync(installed, 'utf8')).version, manifest.version);
  // What `napi pre-publish` writes at release: every prebuilt platform, at this version.
  assert.deepEqual(
    manifest.optionalDependencies,
    Object.fromEntries(PREBUILT.map((p) => [`oauth-state-store-${p}`, manifest.version])),
  );
  for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(manifest.scripts?.[hook], undefined, hook);
});

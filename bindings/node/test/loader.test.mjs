// The addon loader (lib/platform.cjs): which platform package a system needs, how the C library
// is told, and the error a user gets for each way the addon can be missing, on package layouts
// made in a temp directory as npm lays them out (the main package and its platform package side
// by side in node_modules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { packageFile } from './support/package.mjs';

const require = createRequire(import.meta.url);
const { PREBUILT, LOAD_ERROR, libcFrom, detectLibc, platformName, loadAddon } = require(packageFile('lib/platform.cjs'));
const REPOSITORY = 'https://github.com/oauth-state-store/oauth-state-store';
const VERSION = '0.1.0';
const LINUX_GLIBC_X64 = { platform: 'linux', arch: 'x64', libc: 'glibc' };

/**
 * node_modules/oauth-state-store (package.json only, or with `local`: a file named as a build
 * from source) and, with `platformPackage`, node_modules/<its name> with its package.json and
 * its main file. Returns the main package's directory.
 */
function layout({ local, platformPackage } = {}) {
  const modules = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oss-loader-')), 'node_modules');
  const root = path.join(modules, 'oauth-state-store');
  fs.mkdirSync(root, { recursive: true });
  const manifest = { name: 'oauth-state-store', version: VERSION, repository: { type: 'git', url: `git+${REPOSITORY}.git` } };
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify(manifest));
  if (local) fs.writeFileSync(path.join(root, local.file), local.content);
  if (platformPackage) {
    const { name, version = VERSION, main, content } = platformPackage;
    const dir = path.join(modules, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version, main }));
    fs.writeFileSync(path.join(dir, main), content);
  }
  return root;
}

/** The error loadAddon throws, checked for the load error's code and the package's prefix. */
function loadError(options) {
  let err;
  try {
    loadAddon(options);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, 'loadAddon threw');
  assert.equal(err.code, LOAD_ERROR);
  assert.match(err.message, /^oauth-state-store: /);
  return err;
}

const BUILD_FROM_SOURCE = ['npm ci && npm run build', 'npm install <clone>/bindings/node', REPOSITORY];

test('the C library is told from ldd, and from the runtime report only when ldd says nothing', () => {
  const debian = '#! /bin/bash\n# This file is part of the GNU C Library.\necho \'ldd (Debian GLIBC 2.36-9) 2.36\'\n';
  const alpine = '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n';
  const untouched = () => assert.fail('the report is not needed when ldd answers');
  assert.equal(libcFrom({ ldd: debian, report: untouched }), 'glibc');
  assert.equal(libcFrom({ ldd: alpine, report: untouched }), 'musl');
  assert.equal(libcFrom({ ldd: null, report: () => ({ header: { glibcVersionRuntime: '2.17' } }) }), 'glibc');
  assert.equal(libcFrom({ ldd: null, report: () => ({ header: {}, sharedObjects: ['/lib/ld-musl-aarch64.so.1'] }) }), 'musl');
  assert.equal(libcFrom({ ldd: 'something else', report: () => ({ header: {}, sharedObjects: [] }) }), null);
  assert.equal(libcFrom({ ldd: null, report: () => null }), null);
});

test('this system\'s C library is detected, and agrees with the runtime report', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const libc = detectLibc();
  assert.ok(libc === 'glibc' || libc === 'musl', `detected ${libc}`);
  assert.equal(Boolean(process.report.getReport().header.glibcVersionRuntime), libc === 'glibc');
});

test('the prebuilt platforms are napi.targets, named as napi build --platform names them', async () => {
  const { readNapiConfig, parseTriple } = await import('@napi-rs/cli');
  const config = await readNapiConfig(packageFile('package.json'));
  assert.deepEqual([...PREBUILT].sort(), config.targets.map((t) => t.platformArchABI).sort());
  const others = ['x86_64-pc-windows-msvc', 'x86_64-unknown-freebsd', 'armv7-unknown-linux-gnueabihf', 'riscv64gc-unknown-linux-gnu', 'armv7-unknown-linux-musleabihf'];
  for (const triple of [...config.targets.map((t) => t.triple), ...others]) {
    const { platform, arch, abi, platformArchABI } = parseTriple(triple);
    const libc = abi?.startsWith('gnu') ? 'glibc' : abi?.startsWith('musl') ? 'musl' : null;
    assert.equal(platformName({ platform, arch, libc }), platformArchABI, triple);
  }
});

test('a system with no prebuilt package: the error lists the prebuilt ones and says how to build', () => {
  for (const [system, named] of [
    [{ platform: 'freebsd', arch: 'x64', libc: null }, 'freebsd-x64'],
    [{ platform: 'win32', arch: 'x64', libc: null }, 'win32-x64-msvc'],
    [{ platform: 'linux', arch: 'riscv64', libc: 'glibc' }, 'linux-riscv64-gnu'],
    [{ platform: 'linux', arch: 'x64', libc: null }, 'linux-x64 with a C library that is neither glibc nor musl'],
  ]) {
    const err = loadError({ root: layout(), ...system });
    assert.ok(err.message.includes(`no prebuilt addon for ${named}`), err.message);
    for (const p of [...PREBUILT, ...BUILD_FROM_SOURCE]) assert.ok(err.message.includes(p), `${p}: ${err.message}`);
  }
});

test('the platform package not installed: the error names it at this version and the install line', () => {
  const err = loadError({ root: layout(), ...LINUX_GLIBC_X64 });
  for (const p of [
    'the prebuilt addon for linux-x64-gnu is not installed',
    'oauth-state-store-linux-x64-gnu@0.1.0, an optional dependency of oauth-state-store',
    '--omit=optional',
    '`npm install oauth-state-store-linux-x64-gnu@0.1.0`',
    ...BUILD_FROM_SOURCE,
  ]) {
    assert.ok(err.message.includes(p), `${p}: ${err.message}`);
  }
});

test('each system gets its own platform package, of exactly this version', () => {
  for (const [system, name] of [
    [LINUX_GLIBC_X64, 'oauth-state-store-linux-x64-gnu'],
    [{ platform: 'linux', arch: 'arm64', libc: 'musl' }, 'oauth-state-store-linux-arm64-musl'],
    [{ platform: 'darwin', arch: 'arm64', libc: null }, 'oauth-state-store-darwin-arm64'],
  ]) {
    // A stand-in addon: a JavaScript main, which require() loads as it would the .node file.
    const root = layout({ platformPackage: { name, main: 'addon.cjs', content: `module.exports = { from: '${name}' };` } });
    const { addon, file } = loadAddon({ root, ...system });
    assert.deepEqual(addon, { from: name });
    assert.equal(file, path.join(path.dirname(root), name, 'addon.cjs'));
  }
  const mismatched = layout({
    platformPackage: { name: 'oauth-state-store-linux-x64-gnu', version: '0.1.1', main: 'addon.cjs', content: 'module.exports = {};' },
  });
  const err = loadError({ root: mismatched, ...LINUX_GLIBC_X64 });
  assert.ok(err.message.includes('oauth-state-store-linux-x64-gnu is version 0.1.1 but oauth-state-store is 0.1.0'), err.message);
  assert.ok(err.message.includes('`npm install oauth-state-store-linux-x64-gnu@0.1.0`'), err.message);
});

test('an installed addon that does not load: the error says which, why, and what to do', () => {
  const file = 'oauth-state-store.linux-x64-gnu.node';
  const root = layout({ platformPackage: { name: 'oauth-state-store-linux-x64-gnu', main: file, content: 'not a shared object' } });
  const err = loadError({ root, ...LINUX_GLIBC_X64 });
  assert.ok(err.message.includes('oauth-state-store-linux-x64-gnu@0.1.0 is installed but its addon does not load on this system'), err.message);
  assert.ok(err.cause instanceof Error, 'the runtime\'s own error is the cause');
  assert.ok(err.message.includes('`npm install oauth-state-store-linux-x64-gnu@0.1.0`'), err.message);
});

test('a build from source comes first, and one that does not load is an error, not replaced', () => {
  const file = 'oauth-state-store.linux-x64-gnu.node';
  const root = layout({
    local: { file, content: 'a broken build' },
    platformPackage: { name: 'oauth-state-store-linux-x64-gnu', main: 'addon.cjs', content: 'module.exports = {};' },
  });
  const err = loadError({ root, ...LINUX_GLIBC_X64 });
  assert.ok(err.message.includes(`the addon ${path.join(root, file)}, built from source, exists but does not load`), err.message);
  assert.ok(err.message.includes('npm run build'), err.message);
});

// The npm packages as users install them, made and tested from a checkout (Node >= 20.17):
//
//   node scripts/tarballs.mjs pack      packs, into dist/, the main package (as it is published:
//                                       with the optionalDependencies `napi pre-publish` writes)
//                                       and the platform package of the addon `npm run build`
//                                       made here
//   node scripts/tarballs.mjs test      installs the two into a fresh project with no cargo on
//                                       PATH and runs the package's tests there under Node, then
//                                       its runtime tests under Bun; checks the error a user gets
//                                       when the platform package is not installed, and the
//                                       README's two installs of today (the two tarballs, and
//                                       the package directory of a clone)
//   node scripts/tarballs.mjs bun       the runtime tests under Bun, in the checkout
//   node scripts/tarballs.mjs licences  copies the licence texts into this package and into
//                                       each npm/<platform> package, and into their `files`
//                                       (the release workflow, before publishing)
//
// A Node script rather than a shell one: the release workflow runs it in Alpine (no bash) and
// on macOS too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(pkgDir, '..', '..');
const dist = path.join(pkgDir, 'dist');
const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const require = createRequire(import.meta.url);
const platform = require('../lib/platform.cjs');
const LICENCES = ['LICENSE-MIT', 'LICENSE-APACHE'];

// The test that stays on Node: it only runs tsc, TypeScript's compiler, on the shipped types
// against the SDKs' (TypeScript, not the runtime). The READMEs' snippets are type-checked and
// run under both.
const NODE_ONLY = new Set(['types.test.mjs']);

function run(cmd, args, opts = {}) {
  const { label, ...options } = opts;
  const inRepo = options.cwd && !path.relative(repoRoot, options.cwd).startsWith('..');
  const where = options.cwd ? `   (in ${inRepo ? path.relative(repoRoot, options.cwd) || '.' : options.cwd})` : '';
  console.log(`$ ${label ?? [path.basename(cmd), ...args].join(' ')}${where}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

/** `npm pack` of `dir` into dist/; returns npm's description of the tarball. */
function npmPack(dir) {
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', dist], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm pack in ${dir} failed: ${r.stderr}`);
  return JSON.parse(r.stdout)[0];
}

/** Copies the licence texts into a package directory and lists them in its `files`. */
function addLicences(dir) {
  const file = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const licence of LICENCES) fs.copyFileSync(path.join(repoRoot, licence), path.join(dir, licence));
  pkg.files = [...new Set([...(pkg.files ?? []), ...LICENCES])];
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}

async function napiConfig() {
  const { readNapiConfig } = await import('@napi-rs/cli');
  return readNapiConfig(path.join(pkgDir, 'package.json'));
}

async function pack() {
  const config = await napiConfig();
  const prefix = `${config.binaryName}.`;
  const built = fs.readdirSync(pkgDir).filter((f) => f.startsWith(prefix) && f.endsWith('.node'));
  if (built.length !== 1) {
    throw new Error(`expected one addon built by \`npm run build\` in ${pkgDir}, found ${built.length ? built.join(', ') : 'none'}`);
  }
  const addon = built[0];
  const name = addon.slice(prefix.length, -'.node'.length);
  if (!config.targets.some((t) => t.platformArchABI === name)) {
    throw new Error(`${addon} is for ${name}, which is not in package.json's napi.targets`);
  }
  fs.rmSync(dist, { recursive: true, force: true });
  const stage = path.join(dist, 'stage');
  fs.mkdirSync(stage, { recursive: true });

  // The platform package, laid out by napi as the release does it.
  const npmDir = path.join(stage, 'npm');
  run('npx', ['napi', 'create-npm-dirs', '--npm-dir', npmDir], { cwd: pkgDir });
  const platformDir = path.join(npmDir, name);
  fs.copyFileSync(path.join(pkgDir, addon), path.join(platformDir, addon));
  addLicences(platformDir);
  const platformTarball = npmPack(platformDir);

  // The main package: what its `files` ship, with the optionalDependencies `napi pre-publish`
  // writes at release (every target, at this version).
  const mainDir = path.join(stage, 'main');
  fs.mkdirSync(mainDir);
  for (const f of [...manifest.files.filter((f) => !LICENCES.includes(f)), 'package.json', 'README.md']) {
    fs.cpSync(path.join(pkgDir, f), path.join(mainDir, f), { recursive: true });
  }
  const published = { ...manifest };
  published.optionalDependencies = Object.fromEntries(
    config.targets.map((t) => [`${config.packageName}-${t.platformArchABI}`, manifest.version]),
  );
  fs.writeFileSync(path.join(mainDir, 'package.json'), `${JSON.stringify(published, null, 2)}\n`);
  addLicences(mainDir);
  const mainTarball = npmPack(mainDir);

  const shipped = mainTarball.files.map((f) => f.path);
  if (shipped.some((f) => f.endsWith('.node'))) throw new Error(`the main package ships an addon: ${shipped.join(', ')}`);
  for (const licence of LICENCES) {
    for (const t of [mainTarball, platformTarball]) {
      if (!t.files.some((f) => f.path === licence)) throw new Error(`${t.filename} lacks ${licence}`);
    }
  }
  if (!platformTarball.files.some((f) => f.path === addon)) throw new Error(`${platformTarball.filename} lacks ${addon}`);
  for (const hook of ['preinstall', 'install', 'postinstall']) {
    if (manifest.scripts?.[hook]) throw new Error(`the main package has a ${hook} script`);
  }
  const pair = { main: mainTarball.filename, platform: platformTarball.filename, platformPackage: platformTarball.name };
  fs.writeFileSync(path.join(dist, 'tarballs.json'), `${JSON.stringify(pair, null, 2)}\n`);
  const mb = (n) => (n < 1e6 ? `${(n / 1e3).toFixed(0)} kB` : `${(n / 1e6).toFixed(1)} MB`);
  console.log(`packed dist/${pair.main} (${shipped.length} files, ${mb(mainTarball.size)})`);
  console.log(`packed dist/${pair.platform} (${mb(platformTarball.size)}, unpacked ${mb(platformTarball.unpackedSize)})`);
}

/** This environment with every PATH directory that holds cargo or rustc left out. */
function withoutRust() {
  const rust = (d) => ['cargo', 'rustc'].some((b) => fs.existsSync(path.join(d, b)));
  const env = { ...process.env, PATH: process.env.PATH.split(path.delimiter).filter((d) => d && !rust(d)).join(path.delimiter) };
  for (const b of ['cargo', 'rustc']) {
    const probe = spawnSync(b, ['--version'], { env });
    if (probe.error?.code !== 'ENOENT') throw new Error(`${b} is still on PATH`);
  }
  return env;
}

/** A new project directory with this package.json. */
function project(dir, pkg) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: path.basename(dir), private: true, ...pkg }, null, 2)}\n`);
  return dir;
}

function bunBinary() {
  return path.join(pkgDir, 'node_modules', '.bin', 'bun');
}

function runtimeTests(testDir) {
  return fs
    .readdirSync(testDir)
    .filter((f) => f.endsWith('.test.mjs') && !NODE_ONLY.has(f))
    .sort()
    .map((f) => `./test/${f}`);
}

function bunTests(cwd, env) {
  run(bunBinary(), ['--version'], { cwd, env });
  run(bunBinary(), ['test', '--timeout', '60000', ...runtimeTests(path.join(cwd, 'test'))], { cwd, env });
}

function test() {
  const pair = JSON.parse(fs.readFileSync(path.join(dist, 'tarballs.json'), 'utf8'));
  const tarball = (f) => path.join(dist, f);
  const env = withoutRust();

  // 1. As a user installs it from the registry: the main package is the dependency, and npm
  //    picks its optionalDependency for this platform (overrides point that one at the
  //    tarball; the other five are not on the registry at this version and npm skips them).
  //    Inside bindings/node, so that the tests' own devDependencies (the SDKs, the
  //    authorization server, TypeScript) resolve from bindings/node/node_modules.
  const app = project(path.join(dist, 'app'), {
    dependencies: { [manifest.name]: `file:${tarball(pair.main)}` },
    overrides: { [pair.platformPackage]: `file:${tarball(pair.platform)}` },
  });
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: app, env });
  // npm skips an optional dependency it cannot install without a word, and exits 0.
  const installed = path.join(app, 'node_modules', pair.platformPackage);
  if (!fs.existsSync(path.join(installed, 'package.json'))) throw new Error(`npm did not install ${pair.platformPackage}`);
  if (!fs.readdirSync(installed).some((f) => f.endsWith('.node'))) throw new Error(`${pair.platformPackage} has no addon`);

  fs.cpSync(path.join(pkgDir, 'test'), path.join(app, 'test'), {
    recursive: true,
    filter: (src) => !path.basename(src).startsWith('snippet-'),
  });
  const testEnv = { ...env, OSS_PACKAGE_UNDER_TEST: path.join(app, 'node_modules', manifest.name) };
  const all = fs.readdirSync(path.join(app, 'test')).filter((f) => f.endsWith('.test.mjs')).sort();
  run(process.execPath, ['--test', '--test-concurrency=1', ...all.map((f) => `test/${f}`)], { cwd: app, env: testEnv });
  bunTests(app, testEnv);

  // 2. Installed without its platform package: loading fails with the loader's message, word
  //    for word, under Node (CommonJS and ES module) and Bun.
  const facts = {
    name: manifest.name,
    version: manifest.version,
    platformPackage: pair.platformPackage,
    platform: pair.platformPackage.slice(manifest.name.length + 1),
    repository: platform.repositoryUrl(manifest),
  };
  const expected = `${manifest.name}: ${platform.messages.missing(facts)}`;
  const bare = project(fs.mkdtempSync(path.join(os.tmpdir(), 'oss-npm-without-addon-')), {
    dependencies: { [manifest.name]: `file:${tarball(pair.main)}` },
  });
  run('npm', ['install', '--no-audit', '--no-fund', '--omit=optional'], { cwd: bare, env });
  for (const [runtime, args] of [
    [process.execPath, ['-e', `require('${manifest.name}')`]],
    [process.execPath, ['--input-type=module', '-e', `await import('${manifest.name}')`]],
    [bunBinary(), ['-e', `require('${manifest.name}')`]],
  ]) {
    const r = spawnSync(runtime, args, { cwd: bare, env, encoding: 'utf8' });
    const shown = r.stderr.replace(/\s+/g, ' ');
    if (r.status === 0 || !shown.includes(expected)) {
      throw new Error(`${path.basename(runtime)} ${args.join(' ')}: expected exit != 0 and the message\n  ${expected}\ngot ${r.status}:\n${r.stderr}`);
    }
    console.log(`${path.basename(runtime)} ${args.at(-1)}, without ${pair.platformPackage}: the loader's message, exit ${r.status}`);
  }

  // 3. The README's install of the two tarballs side by side, then a flow begun and consumed.
  const side = project(fs.mkdtempSync(path.join(os.tmpdir(), 'oss-npm-two-tarballs-')), {});
  run('npm', ['install', '--no-audit', '--no-fund', tarball(pair.main), tarball(pair.platform)], { cwd: side, env });
  const flow = [
    "const { Store } = require('oauth-state-store');",
    "const db = require('node:path').join(require('node:fs').mkdtempSync(require('node:os').tmpdir() + '/oss-'), 'flows.db');",
    '(async () => {',
    '  const store = await Store.open(db);',
    "  const flow = await store.begin({ serverId: 'https://mcp.example.com' });",
    '  const done = await store.consume(flow.state);',
    "  if (done.verifier.length !== 43) throw new Error('no verifier');",
    "  console.log('begun and consumed');",
    '})().catch((e) => { console.error(e); process.exit(1); });',
  ].join('\n');
  run(process.execPath, ['-e', flow], { cwd: side, env, label: 'node -e <open a store, begin a flow, consume it>' });

  // 4. The README's install from a clone: the package directory itself, with its build.
  const clone = project(fs.mkdtempSync(path.join(os.tmpdir(), 'oss-npm-from-clone-')), {});
  run('npm', ['install', '--no-audit', '--no-fund', pkgDir], { cwd: clone, env });
  run(process.execPath, ['-e', flow], { cwd: clone, env, label: 'node -e <open a store, begin a flow, consume it>' });
  for (const dir of [bare, side, clone]) fs.rmSync(dir, { recursive: true, force: true });
}

const command = process.argv[2];
if (command === 'pack') await pack();
else if (command === 'test') test();
else if (command === 'bun') bunTests(pkgDir, process.env);
else if (command === 'licences') {
  addLicences(pkgDir);
  const npmDir = path.join(pkgDir, 'npm');
  for (const d of fs.existsSync(npmDir) ? fs.readdirSync(npmDir) : []) addLicences(path.join(npmDir, d));
} else {
  console.error('usage: node scripts/tarballs.mjs pack | test | bun | licences');
  process.exit(2);
}

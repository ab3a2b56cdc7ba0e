'use strict';
// Which native addon fits this system, where it is found, and what to tell the user when none
// fits. Apart from detectLibc, everything here takes the system as arguments (lib/native.cjs
// passes the real one), so that the tests cover every branch without the systems they describe.
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

/**
 * The platforms a prebuilt package is published for, by napi's platform name (the suffix of
 * `oauth-state-store-<platform>` and of the addon's file name). package.json's `napi.targets`
 * lists the same six, as Rust target triples; a test keeps the two lists equal. Windows is not
 * among them: the core's file-permission checks and the listener's wake-up are POSIX only.
 */
const PREBUILT = Object.freeze([
  'darwin-arm64',
  'darwin-x64',
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'linux-arm64-musl',
]);

const LOAD_ERROR = 'ERR_OAUTH_STATE_STORE_ADDON';

/**
 * The C library of a Linux system, `'glibc'`, `'musl'` or `null` when it cannot be told.
 * `ldd` is the text of /usr/bin/ldd (or null when there is none, as in a distroless image):
 * glibc's is a script that names the GNU C Library, musl's runs (or is) the musl loader.
 * Only when that says nothing is `report()` called: the runtime's diagnostic report, which
 * has the glibc version glibc reports and the shared objects loaded.
 */
function libcFrom({ ldd, report }) {
  if (typeof ldd === 'string') {
    const musl = ldd.includes('musl');
    const glibc = ldd.includes('GNU C Library') || ldd.includes('GLIBC');
    if (musl !== glibc) return musl ? 'musl' : 'glibc';
  }
  const r = report?.();
  if (r?.header?.glibcVersionRuntime) return 'glibc';
  const objects = Array.isArray(r?.sharedObjects) ? r.sharedObjects : [];
  if (objects.some((f) => typeof f === 'string' && (f.includes('/ld-musl-') || f.includes('/libc.musl-')))) {
    return 'musl';
  }
  return null;
}

/** This system's C library as libcFrom tells it (null off Linux). */
function detectLibc() {
  if (process.platform !== 'linux') return null;
  let ldd = null;
  try {
    ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
  } catch {
    // no ldd (a distroless image): the runtime's report says
  }
  return libcFrom({
    ldd,
    report: () => (typeof process.report?.getReport === 'function' ? process.report.getReport() : null),
  });
}

/**
 * napi's name for a build on this system (`napi build --platform` puts it in the file name),
 * or null on Linux when the C library is unknown. Defined beyond the prebuilt six, so that a
 * build from source is found on any system napi builds for.
 */
function platformName({ platform, arch, libc }) {
  if (platform === 'linux') {
    if (libc === 'glibc') return arch === 'arm' ? 'linux-arm-gnueabihf' : `linux-${arch}-gnu`;
    if (libc === 'musl') return arch === 'arm' ? 'linux-arm-musleabihf' : `linux-${arch}-musl`;
    return null;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** How the user sees this system in a message: `linux-x64-musl`, `freebsd-x64`, ... */
function describeSystem({ platform, arch, libc }) {
  const name = platformName({ platform, arch, libc });
  if (name) return name;
  return `${platform}-${arch} with a C library that is neither glibc nor musl (or could not be told)`;
}

/** The message's closing advice: build the addon from source. */
function fromSource(repository) {
  return (
    `build it from source: in a clone of ${repository}, run \`cd bindings/node && npm ci && npm run build\` ` +
    '(needs a Rust toolchain), then `npm install <clone>/bindings/node` in your project'
  );
}

const messages = {
  /** No prebuilt package exists for this system. */
  unsupported: ({ system, repository }) =>
    `no prebuilt addon for ${system}; the prebuilt ones are ${PREBUILT.join(', ')}. ` +
    `To use this package here, ${fromSource(repository)}.`,
  /** This system's package exists on the registry but is not installed. */
  missing: ({ name, version, platformPackage, platform, repository }) =>
    `the prebuilt addon for ${platform} is not installed: ${platformPackage}@${version}, an optional ` +
    `dependency of ${name}, is missing from node_modules. Package managers leave it out when ` +
    'optional dependencies are omitted (npm --omit=optional or --no-optional, a production image ' +
    'built that way) or when the lockfile was written on another platform. Install it with ' +
    `\`npm install ${platformPackage}@${version}\` (or delete node_modules and the lockfile and ` +
    `install again), or ${fromSource(repository)}.`,
  /** Installed, but another version than this package's. */
  mismatch: ({ name, version, platformPackage, found }) =>
    `${platformPackage} is version ${found} but ${name} is ${version}, and the two must be the same ` +
    `version: \`npm install ${platformPackage}@${version}\`.`,
  /** Installed at the right version, but the system refuses to load it. */
  broken: ({ version, platformPackage, cause, repository }) =>
    `${platformPackage}@${version} is installed but its addon does not load on this system ` +
    `(${cause}). A damaged install is mended by \`npm install ${platformPackage}@${version}\`; ` +
    'on a system older than the prebuilt addons support (the package README lists the platforms), ' +
    `${fromSource(repository)}.`,
  /** A build from source is there, but does not load: never replaced by something else. */
  brokenLocal: ({ file, cause }) =>
    `the addon ${file}, built from source, exists but does not load (${cause}); rebuild it with ` +
    '`npm run build`, or delete it to use the prebuilt package.',
};

/** The repository's web address, from a package.json's `repository`. */
function repositoryUrl(manifest) {
  const url = typeof manifest.repository === 'string' ? manifest.repository : manifest.repository?.url;
  return String(url ?? '').replace(/^git\+/, '').replace(/\.git$/, '');
}

function fail(name, message, cause) {
  const err = new Error(`${name}: ${message}`, cause === undefined ? undefined : { cause });
  err.code = LOAD_ERROR;
  return err;
}

/**
 * Loads the addon of the package in `root` (its package.json gives `name`, `version` and
 * `repository`) for the system described by `platform`, `arch`, `libc`:
 *  1. a build from source in `root` (`npm run build` in a clone names it after the platform);
 *     one that exists but does not load is an error, never silently replaced;
 *  2. the prebuilt package `<name>-<platform>`, resolved from `root` as any dependency is, at
 *     exactly `version`.
 * Returns `{ addon, file }`; throws an Error with `code` ERR_OAUTH_STATE_STORE_ADDON and a
 * message that says what to do.
 */
function loadAddon({ root, platform, arch, libc }) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const { name, version } = manifest;
  const repository = repositoryUrl(manifest);
  const system = { platform, arch, libc };
  const napiName = platformName(system);
  const requireFrom = createRequire(path.join(root, 'package.json'));

  if (napiName) {
    const local = path.join(root, `${name}.${napiName}.node`);
    if (fs.existsSync(local)) {
      try {
        return { addon: requireFrom(local), file: local };
      } catch (cause) {
        throw fail(name, messages.brokenLocal({ file: local, cause: cause?.message }), cause);
      }
    }
  }
  if (!napiName || !PREBUILT.includes(napiName)) {
    throw fail(name, messages.unsupported({ system: describeSystem(system), repository }));
  }

  const platformPackage = `${name}-${napiName}`;
  const facts = { name, version, platformPackage, platform: napiName, repository };
  let packageJson;
  try {
    packageJson = requireFrom.resolve(`${platformPackage}/package.json`);
  } catch (cause) {
    throw fail(name, messages.missing(facts), cause);
  }
  const found = JSON.parse(fs.readFileSync(packageJson, 'utf8')).version;
  if (found !== version) throw fail(name, messages.mismatch({ ...facts, found }));
  let file;
  try {
    file = requireFrom.resolve(platformPackage);
    return { addon: requireFrom(file), file };
  } catch (cause) {
    throw fail(name, messages.broken({ ...facts, cause: cause?.message }), cause);
  }
}

module.exports = {
  PREBUILT,
  LOAD_ERROR,
  libcFrom,
  detectLibc,
  platformName,
  describeSystem,
  repositoryUrl,
  messages,
  loadAddon,
};

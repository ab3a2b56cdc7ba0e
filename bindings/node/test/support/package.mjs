// The copy of the package the tests run against: this checkout's bindings/node (`npm test`,
// `npm run test:bun`), or the one installed from the packed tarballs into a fresh project
// (`scripts/tarballs.mjs test`, which sets OSS_PACKAGE_UNDER_TEST to its directory). Tests
// import the package by its name, `oauth-state-store`, which resolves to either.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The directory of the package the name resolves to (where its package.json is). */
export const packageRoot = path.dirname(require.resolve('oauth-state-store'));

/** True when the tests run in the checkout, false when against an installed package. */
export const inCheckout = process.env.OSS_PACKAGE_UNDER_TEST === undefined;

/** The package's package.json. */
export const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));

/** A file of the package under test, by its path inside the package. */
export function packageFile(relative) {
  return path.join(packageRoot, relative);
}

/** The loaded addon (what lib/native.cjs exports). */
export function addon() {
  return require(packageFile('lib/native.cjs'));
}

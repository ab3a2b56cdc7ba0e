// `npm publish` of this package runs this first (prepublishOnly) and stops unless the package
// is the one the release workflow prepares: optionalDependencies naming the platform package
// of every napi target at this exact version (`napi pre-publish` writes them), and the licence
// texts beside it (`node scripts/tarballs.mjs licences`). Published from a plain checkout, the
// package would install without any addon on every platform.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const { readNapiConfig } = await import('@napi-rs/cli');
const config = await readNapiConfig(path.join(pkgDir, 'package.json'));

const problems = [];
const expected = Object.fromEntries(config.targets.map((t) => [`${config.packageName}-${t.platformArchABI}`, manifest.version]));
const actual = manifest.optionalDependencies ?? {};
for (const [name, version] of Object.entries(expected)) {
  if (actual[name] !== version) problems.push(`optionalDependencies["${name}"] is ${actual[name] ?? 'missing'}, not ${version}`);
}
for (const name of Object.keys(actual)) {
  if (!(name in expected)) problems.push(`optionalDependencies["${name}"] is not a napi target's package`);
}
for (const licence of ['LICENSE-MIT', 'LICENSE-APACHE']) {
  if (!fs.existsSync(path.join(pkgDir, licence)) || !manifest.files.includes(licence)) problems.push(`${licence} is not shipped`);
}
if (problems.length > 0) {
  console.error(
    `refusing to publish ${manifest.name}@${manifest.version}: publish through the release workflow ` +
      '(.github/workflows/release.yml), which builds every platform package first.\n  ' +
      problems.join('\n  '),
  );
  process.exit(1);
}

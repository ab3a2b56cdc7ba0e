// Every TypeScript snippet of both READMEs (the repository's README.md and this package's)
// type-checks under `strict` against the SDK it imports, and runs: a real login against the
// test authorization server, which must end with the app's provider holding an access token.
// What a snippet imports from './my-app.mjs' is the app's own part (test/readme/my-app.mjs).
// Against an installed package, the README checked is the one it ships (what npm shows), and
// the snippets run against that package; the repository's README is checked in the checkout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startAuthServer, CLIENT_ID } from './support/authserver.mjs';
import { inCheckout, packageFile } from './support/package.mjs';

const require = createRequire(import.meta.url);
const ts = require('typescript');
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, 'readme');
const packageReadme = packageFile('README.md');
const READMES = inCheckout ? [path.join(here, '..', '..', '..', 'README.md'), packageReadme] : [packageReadme];
const shownAs = (file) => (file === packageReadme ? 'bindings/node/README.md' : 'README.md');

/** The ```ts blocks of a Markdown file, with where they start. */
function snippets(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  const re = /^```(ts|typescript)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ file, line: text.slice(0, m.index).split('\n').length, code: m[2] });
  }
  return out;
}

const blocks = READMES.flatMap(snippets).map((b, i) => ({ ...b, name: `snippet-${i + 1}` }));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

let as;
before(async () => {
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('snippet-'))) fs.rmSync(path.join(dir, f));
  for (const b of blocks) {
    fs.writeFileSync(path.join(dir, `${b.name}.mts`), `// ${shownAs(b.file)}, line ${b.line}\n${b.code}`);
  }
  as = await startAuthServer();
});

after(async () => {
  await as?.close();
});

test('the READMEs have TypeScript snippets, each naming the SDK it uses', () => {
  assert.ok(blocks.length >= (inCheckout ? 3 : 2), `found ${blocks.length}`);
  for (const b of blocks) {
    assert.match(b.code, /from '(@modelcontextprotocol\/sdk\/[^']+|@modelcontextprotocol\/client|@ai-sdk\/mcp)'/, `${b.file}:${b.line}`);
  }
});

test('every snippet type-checks under strict against its SDK (tsc)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});

for (const b of blocks) {
  test(`${shownAs(b.file)}:${b.line} runs to a finished login`, async () => {
    const js = ts.transpileModule(b.code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const file = path.join(dir, `${b.name}.mjs`);
    fs.writeFileSync(file, js);
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-readme-'));
    const child = spawn(process.execPath, [file], {
      env: {
        ...process.env,
        HOME: home,
        OAUTH_STATE_DB: path.join(home, 'state', 'flows.db'),
        OSS_README_ISSUER: as.issuer,
        OSS_README_CLIENT_ID: CLIENT_ID,
        OSS_README_PORT: String(await freePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => child.kill(), 60_000);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, output);
  });
}

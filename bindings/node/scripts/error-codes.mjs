// `npm run codes`: writes index.d.ts's ErrorCode declaration from the addon's one list of codes
// (errorCodes(), bindings/node/src/error.rs), after a build. test/error-codes.test.mjs fails
// while index.d.ts and the list differ.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const native = createRequire(import.meta.url)('../lib/native.cjs');
const file = new URL('../index.d.ts', import.meta.url);
const text = fs.readFileSync(file, 'utf8');
const lines = native.errorCodes().map((code) => `  readonly ${code}: '${code}';`);
const declaration = `export declare const ErrorCode: {\n${lines.join('\n')}\n};`;
const next = text.replace(/export declare const ErrorCode: \{[^}]*\};/, declaration);
if (next === text && !text.includes(declaration)) throw new Error('index.d.ts has no ErrorCode declaration to replace');
if (next !== text) fs.writeFileSync(file, next);

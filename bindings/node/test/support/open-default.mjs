// A process that opens the store at the default path, as an app started on a fresh account
// would: it begins and consumes a flow and prints the path and the modes it finds, as JSON.
// (A child process rather than a change to process.env: Bun's addons see the environment the
// process started with, not later assignments to process.env.)
import fs from 'node:fs';
import path from 'node:path';
import { Store } from 'oauth-state-store';

const options = process.argv[2] ? JSON.parse(process.argv[2]) : undefined;
const store = await Store.openDefault(options);
const flow = await store.begin({ serverId: 'https://mcp.example.com' });
const { verifier } = await store.consume(flow.state);
const mode = (p) => fs.statSync(p).mode & 0o777;
process.stdout.write(
  `${JSON.stringify({ path: store.path, dirMode: mode(path.dirname(store.path)), fileMode: mode(store.path), verifierLength: verifier.length })}\n`,
);

'use strict';
// Where the SDK's discovery state of a flow waits for its callback leg, until the core keeps it
// on the flow row (a migration that is not in this release). One file per flow in
// `<store file>.discovery/` (0700), named by the SHA-256 of the flow's state (the raw state
// never reaches the disk, as in the store), written 0600 and atomically (temporary file, then
// rename). Discovery state is the authorization server's public metadata: no secret is in it.
// A file is removed when its flow is consumed through the wrapper, or after its flow expired.
const fs = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');

function dirOf(storePath) {
  return `${storePath}.discovery`;
}

function fileOf(storePath, state) {
  const key = crypto.createHash('sha256').update(state, 'utf8').digest('hex');
  return path.join(dirOf(storePath), `${key}.json`);
}

async function removeExpired(dir, now) {
  let names;
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(dir, name);
    try {
      const { expiresAt } = JSON.parse(await fs.readFile(file, 'utf8'));
      if (!(expiresAt > now)) await fs.rm(file, { force: true });
    } catch {
      // being written or removed by another process: leave it
    }
  }
}

/** Keeps `discoveryState` for the flow `state` until `expiresAt` (Unix ms). */
async function put(storePath, state, serverId, expiresAt, discoveryState) {
  const dir = dirOf(storePath);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await removeExpired(dir, Date.now());
  const file = fileOf(storePath, state);
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  const body = JSON.stringify({ serverId, expiresAt, discoveryState });
  await fs.writeFile(tmp, body, { mode: 0o600, flag: 'wx' });
  await fs.rename(tmp, file);
}

/** The discovery state kept for `state` and `serverId`, removed as it is read. */
async function take(storePath, state, serverId) {
  const file = fileOf(storePath, state);
  let kept;
  try {
    kept = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  await fs.rm(file, { force: true });
  if (kept.serverId !== serverId || !(kept.expiresAt > Date.now())) return undefined;
  return kept.discoveryState;
}

module.exports = { put, take, dirOf };

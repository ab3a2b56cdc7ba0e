// A throwaway PostgreSQL server for the Node tests: `initdb` in a temp dir, the server on
// 127.0.0.1 with a random port and its socket in that dir, run as the `postgres` user through
// `runuser` when the tests run as root (the server refuses root). Stopped by `stop()`, and by a
// watchdog if this process dies first. Where PostgreSQL is missing, `startCluster` returns
// the reason to skip, unless OSS_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const SUPERUSER = 'postgres';

/** The directory of initdb, pg_ctl and postgres (newest major version first), or why none. */
function findBinaries() {
  const dirs = process.env.OSS_POSTGRES_BIN
    ? [process.env.OSS_POSTGRES_BIN]
    : (fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql') : [])
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
  const bin = dirs.find((d) => ['initdb', 'pg_ctl', 'postgres', 'createdb'].every((p) => fs.existsSync(path.join(d, p))));
  if (!bin) return { reason: 'no initdb/pg_ctl/postgres/createdb under /usr/lib/postgresql/*/bin' };
  if (process.getuid() === 0 && !fs.existsSync('/usr/sbin/runuser')) {
    return { reason: 'running as root and /usr/sbin/runuser is missing' };
  }
  return { bin };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster: `{ url(database), createDatabase(name), stop() }`, or `{ skip: reason }`
 * where PostgreSQL is missing (a failure under OSS_REQUIRE_POSTGRES=1).
 */
export async function startCluster() {
  const found = findBinaries();
  if (!found.bin) {
    const why = `PostgreSQL tests SKIPPED: ${found.reason}`;
    if (process.env.OSS_REQUIRE_POSTGRES === '1') throw new Error(`${why} (OSS_REQUIRE_POSTGRES=1)`);
    return { skip: why };
  }
  const asRoot = process.getuid() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oss-node-pg-'));
  if (asRoot) execFileSync('chown', [`${SUPERUSER}:`, dir]);
  const data = path.join(dir, 'data');
  const run = (program, args) => {
    const exe = path.join(found.bin, program);
    const [cmd, argv] = asRoot ? ['/usr/sbin/runuser', ['-u', SUPERUSER, '--', exe, ...args]] : [exe, args];
    return execFileSync(cmd, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  };
  run('initdb', ['-D', data, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  fs.appendFileSync(path.join(data, 'postgresql.conf'), "\ninclude 'oauth_state_store_test.conf'\n");
  // A watchdog stops the server and removes the directory if this process dies without stop().
  const stopCmd = `${asRoot ? `/usr/sbin/runuser -u ${SUPERUSER} -- ` : ''}${path.join(found.bin, 'pg_ctl')} -D ${data} -m immediate -w stop`;
  const watchdog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stopCmd} >/dev/null 2>&1; rm -rf ${dir}`], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  let port;
  let last = '';
  for (let attempt = 0; attempt < 5 && port === undefined; attempt += 1) {
    const candidate = await freePort();
    const conf = `listen_addresses = '127.0.0.1'\nport = ${candidate}\nunix_socket_directories = '${dir}'\n`
      + 'max_connections = 300\nlog_min_messages = warning\nfsync = off\nfull_page_writes = off\n';
    fs.writeFileSync(path.join(data, 'oauth_state_store_test.conf'), conf);
    if (asRoot) execFileSync('chown', [`${SUPERUSER}:`, path.join(data, 'oauth_state_store_test.conf')]);
    try {
      run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
      port = candidate;
    } catch (e) {
      last = `${e.stderr ?? e}`;
    }
  }
  if (port === undefined) throw new Error(`the test PostgreSQL server did not start: ${last}`);
  return {
    port,
    /** The URL of `database` on this server, over TCP on 127.0.0.1. */
    url: (database) => `postgres://${SUPERUSER}@127.0.0.1:${port}/${database}`,
    /** Creates an empty database and returns its URL. */
    createDatabase(name) {
      run('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', SUPERUSER, name]);
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
    },
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        try {
          process.kill(watchdog.pid);
        } catch {
          // already gone
        }
      }
    },
  };
}

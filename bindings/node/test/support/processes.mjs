// Real OS processes for the tests: each client is `node sdk-client.mjs` sharing only the file.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

const script = fileURLToPath(new URL('./sdk-client.mjs', import.meta.url));

/**
 * Starts a client process (`sdk-client.mjs`, or the script given); `send(cmd)` resolves with its
 * one-line JSON answer.
 */
export function startClient(config, clientScript = script) {
  const child = spawn(process.execPath, [clientScript, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const answers = readline.createInterface({ input: child.stdout });
  const queue = [];
  answers.on('line', (line) => queue.shift()?.resolve(JSON.parse(line)));
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.on('exit', (code) => {
    for (const w of queue.splice(0)) w.reject(new Error(`client exited (${code}): ${stderr}`));
  });
  return {
    pid: child.pid,
    send(cmd) {
      return new Promise((resolve, reject) => {
        queue.push({ resolve, reject });
        child.stdin.write(`${JSON.stringify(cmd)}\n`);
      });
    },
    stderr: () => stderr,
    stop() {
      child.stdin.end();
      return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    },
  };
}

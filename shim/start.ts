import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShimArgs } from './args.js';
import { groupHash, groupKey } from './group.js';
import { withLock } from './lock.js';
import { optionsFromAnyBytes, saveBundleOptions } from './options.js';
import { shimFile, shimSocketPath, stateDir } from './paths.js';
import { SHIM_NODE_FLAGS, TASK_SERVICE } from './protocol.js';
import { shimReady } from './readiness.js';
import { TtrpcClient } from '../services/ttrpc/client.js';
import { Code, TtrpcError } from '../services/ttrpc/status.js';

const LOCK_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Asks a running shim to keep serving and to expect task `id`. False when there is no shim, or
 * when it is exiting (it refuses the reservation): then the caller starts a new one.
 */
async function reserveExisting(socket: string, id: string): Promise<boolean> {
  let client: TtrpcClient;
  try {
    client = await TtrpcClient.connect(socket, CONNECT_TIMEOUT_MS);
  } catch {
    return false;
  }
  try {
    await client.call(TASK_SERVICE, 'Connect', 'containerd.task.v2.ConnectRequest', 'containerd.task.v2.ConnectResponse', { id }, { timeoutMs: CONNECT_TIMEOUT_MS });
    return true;
  } catch (err) {
    if (err instanceof TtrpcError && err.grpcCode === Code.UNAVAILABLE) return false;
    throw err;
  } finally {
    client.close();
  }
}

/** Launches the long-lived shim (a new session) and waits until it serves its socket. */
async function launch(args: ShimArgs, hash: string, socket: string): Promise<void> {
  const logPath = shimFile(hash, 'log');
  const log = openSync(logPath, 'a', 0o600);
  const script = fileURLToPath(new URL('./main.js', import.meta.url));
  const argv = ['-namespace', args.namespace, '-id', args.id, '-address', args.address, '-publish-binary', args.publishBinary, '-socket', socket];
  if (args.debug) argv.push('-debug');
  const child = spawn(process.execPath, [...SHIM_NODE_FLAGS, script, ...argv, 'serve'], {
    detached: true, // setsid: the shim must outlive this process and the daemon's session
    stdio: ['ignore', log, log, 'pipe'],
    cwd: stateDir(),
  });
  closeSync(log);
  const ready = child.stdio[3];
  if (!ready) throw new Error('no readiness pipe to the shim');
  try {
    await shimReady(child, ready, READY_TIMEOUT_MS, {
      timeout: 'shim did not become ready',
      exited: (status) => `shim exited (${status}) before it was ready: ${tail(logPath)}`,
    });
  } finally {
    ready.destroy();
    child.unref();
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

/**
 * `berth-shim ... start` (cwd = bundle, runtime options Any on stdin): prints the address of the
 * shim that serves this task's group, launching one if none is alive.
 */
export async function startCommand(args: ShimArgs): Promise<void> {
  if (!args.namespace || !args.id) throw new Error('start needs -namespace and -id');
  const bundle = args.bundle ?? process.cwd();
  saveBundleOptions(bundle, optionsFromAnyBytes(await readStdin()));
  const hash = groupHash(args.address, args.namespace, groupKey(bundle, args.namespace, args.id));
  const socket = shimSocketPath(hash);
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(shimFile(hash, 'lock')), { recursive: true, mode: 0o700 });
  await withLock(shimFile(hash, 'lock'), LOCK_TIMEOUT_MS, async () => {
    if (!(await reserveExisting(socket, args.id))) await launch(args, hash, socket);
  });
  process.stdout.write(`unix://${socket}`);
}

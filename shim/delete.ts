import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeMessage, messageType } from '../services/server/protos.js';
import type { ShimArgs } from './args.js';
import { readExitFile } from './exitfile.js';
import { loadBundleOptions } from './options.js';
import { runtimeRoot } from './paths.js';
import { Runtime } from './runtime.js';
import { timestamp } from './time.js';
import { Code, TtrpcError } from '../services/ttrpc/status.js';

/** What a task killed by this cleanup reports: 128 + SIGKILL, as containerd's shim does. */
const KILLED_STATUS = 137;

function initPid(bundle: string): number {
  try {
    return Number(readFileSync(join(bundle, 'init.pid'), 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/**
 * `berth-shim -namespace NS -id ID [-bundle DIR] delete`: cleans up a task whose shim is gone,
 * without RPC. Force-deletes it in the runtime (the daemon owns and unmounts the rootfs) and
 * prints a containerd.task.v2.DeleteResponse on stdout, with the recorded exit if there is one.
 */
export async function deleteCommand(args: ShimArgs): Promise<void> {
  if (!args.namespace || !args.id) throw new Error('delete needs -namespace and -id');
  const bundle = args.bundle ?? process.cwd();
  const options = loadBundleOptions(bundle);
  const runtime = new Runtime(options.binaryName, options.root || runtimeRoot(args.namespace));
  try {
    await runtime.delete(args.id, true);
  } catch (err) {
    if (!(err instanceof TtrpcError && err.grpcCode === Code.NOT_FOUND)) throw err;
  }
  const recorded = readExitFile(bundle, '');
  const response = {
    pid: recorded?.pid ?? initPid(bundle),
    exit_status: recorded?.status ?? KILLED_STATUS,
    exited_at: timestamp(recorded ? new Date(recorded.exitedAt) : new Date()),
  };
  process.stdout.write(encodeMessage(messageType('containerd.task.v2.DeleteResponse'), response));
}

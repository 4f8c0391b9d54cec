import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Like ctr's /run/containerd/fifo: root-only, and on tmpfs so nothing outlives a reboot. */
const FIFO_ROOT = '/run/berth/fifo';

export interface FifoSet {
  /** Empty when the process gets no such stream (the shim substitutes /dev/null). */
  stdin: string;
  stdout: string;
  stderr: string;
  remove(): Promise<void>;
}

/**
 * Makes the FIFOs a task's stdio is passed through (api.md §2.3, "FIFO contract"), named
 * `<id>-std{in,out,err}` in a fresh private dir. mkfifo(1) makes all of them in one exec; Node
 * has no mkfifo and the native addon cannot travel inside the CLI bundle.
 */
export async function createFifos(id: string, want: { stdin: boolean; stderr: boolean }): Promise<FifoSet> {
  await mkdir(FIFO_ROOT, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(FIFO_ROOT, `${id.slice(0, 32)}-`));
  const path = (name: string): string => join(dir, `${id}-${name}`);
  const set: FifoSet = {
    stdin: want.stdin ? path('stdin') : '',
    stdout: path('stdout'),
    stderr: want.stderr ? path('stderr') : '',
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  try {
    await promisify(execFile)('mkfifo', ['-m', '0600', ...[set.stdin, set.stdout, set.stderr].filter(Boolean)]);
  } catch (err) {
    await set.remove();
    throw err;
  }
  return set;
}

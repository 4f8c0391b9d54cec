import { execFile } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CliError } from './errors.js';
import type { Mount } from './types.js';

const run = promisify(execFile);

/**
 * mount(8) rather than the native addon: the CLI is a bundle, and the addon's .node file is found
 * relative to the daemon's own sources. This runs only when a user name must be resolved.
 */
async function mountReadOnly(mount: Mount, target: string): Promise<void> {
  const options = ['ro', ...(mount.options ?? []).filter((o) => o !== 'rw')];
  const args = mount.type === 'bind' ? ['-o', options.join(','), mount.source, target] : ['-t', mount.type, '-o', options.join(','), mount.source, target];
  await run('mount', args);
}

/** Mounts a snapshot read-only in a temp dir for `fn` (ctr does the same to read /etc/passwd). */
export async function withMountedSnapshot<T>(mounts: readonly Mount[], fn: (root: string) => Promise<T>): Promise<T> {
  const [mount, ...rest] = mounts;
  if (!mount || rest.length) throw new CliError(`cannot mount a snapshot made of ${mounts.length} mounts`);
  const dir = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
  try {
    await mountReadOnly(mount, dir);
    try {
      return await fn(dir);
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    await rmdir(dir);
  }
}

import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Removes the per-namespace parent cgroups (`/<namespace>` in every hierarchy) that runtimes
 * create for cgroupsPath "/<namespace>/<id>" and leave behind. rmdir only: a cgroup that still
 * has tasks or children stays, and that is a leak the test should see.
 */
export async function removeNamespaceCgroups(namespace: string): Promise<string[]> {
  const left: string[] = [];
  for (const hierarchy of await readdir(CGROUP_ROOT)) {
    const dir = join(CGROUP_ROOT, hierarchy, namespace);
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') left.push(`${dir}: ${err.code ?? err.message}`);
    });
  }
  return left;
}

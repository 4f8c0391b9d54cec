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

// The namespaces tests make come from uniqueName(): a prefix and 8 hex digits.
const TEST_NAMESPACE = /-[0-9a-f]{8}$/;

/** The top-level cgroups (`hierarchy/name`) that look like a test namespace's. */
export async function testNamespaceCgroups(): Promise<Set<string>> {
  const found = new Set<string>();
  for (const hierarchy of await readdir(CGROUP_ROOT)) {
    const names = await readdir(join(CGROUP_ROOT, hierarchy), { withFileTypes: true }).catch(() => []);
    for (const entry of names) if (entry.isDirectory() && TEST_NAMESPACE.test(entry.name)) found.add(`${hierarchy}/${entry.name}`);
  }
  return found;
}

/**
 * Fails a test run that left namespace cgroups behind (a test forgot removeNamespaceCgroups),
 * after removing them so that the machine stays clean. `before` is what existed at the start.
 */
export async function checkNoCgroupsLeft(before: ReadonlySet<string>): Promise<void> {
  const left = [...(await testNamespaceCgroups())].filter((dir) => !before.has(dir));
  for (const dir of left) await rmdir(join(CGROUP_ROOT, dir)).catch(() => undefined);
  if (left.length === 0) return;
  // vitest reports an error thrown by a global teardown but still exits 0.
  process.exitCode = 1;
  throw new Error(`the test run left cgroups behind (now removed): ${left.join(', ')}`);
}

import { writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detachAll, detachedReleased, mountAll } from '../mount/mount.js';
import type { MountSpec } from '../snapshots/types.js';
import type { BundleDirs } from './bundle-dirs.js';
import type { ExitRecord } from './shim.js';

const ADDRESS_FILE = 'shim.address';
const CONFIG_FILE = 'config.json';
const INIT_EXIT_FILE = 'exit-init.json';

/**
 * A task's OCI bundle under `<state>/tasks/<namespace>/<id>`: config.json (the container's spec,
 * verbatim), rootfs/ (the snapshot mounted by berthd), and the shim's address, which is how a
 * restarted berthd finds the task again.
 */
export class Bundle {
  readonly rootfs: string;
  /** The directory came from BundleDirs' pool: its files exist, and rewriting them makes no inode. */
  private reused = false;

  private constructor(
    private readonly dirs: BundleDirs,
    readonly namespace: string,
    readonly id: string,
    readonly path: string,
  ) {
    this.rootfs = join(path, 'rootfs');
  }

  static dirOf(state: string, namespace: string, id: string): string {
    return join(state, 'tasks', namespace, id);
  }

  static open(dirs: BundleDirs, namespace: string, id: string): Bundle {
    return new Bundle(dirs, namespace, id, Bundle.dirOf(dirs.state, namespace, id));
  }

  /** Writes config.json and mounts the rootfs; on failure nothing is left behind. */
  static async create(dirs: BundleDirs, namespace: string, id: string, spec: Buffer, rootfs: MountSpec[]): Promise<Bundle> {
    const bundle = Bundle.open(dirs, namespace, id);
    bundle.reused = await dirs.make(namespace, bundle.path);
    try {
      await bundle.write(CONFIG_FILE, spec);
      if (!bundle.reused) await mkdir(bundle.rootfs, { mode: 0o755 });
      if (rootfs.length > 0) {
        await detachedReleased();
        await mountAll(rootfs, bundle.rootfs);
      }
      return bundle;
    } catch (err) {
      bundle.destroy();
      throw err;
    }
  }

  /**
   * In place, not through a temporary file (an inode more; see BundleDirs): it is written once,
   * before the shim creates the task, so a crash that tears it leaves a bundle whose task was never
   * created, and an empty or unreadable address reads as no shim, which start-up cleans up.
   */
  async writeAddress(address: string): Promise<void> {
    await this.write(ADDRESS_FILE, address);
  }

  /**
   * A file of the bundle, 0600. Overwriting one of a reused bundle takes microseconds and is done
   * at once, not as three trips through libuv's pool (open, write, close). A new file allocates an
   * inode, which can take a millisecond on ext4 without a journal: that stays off the event loop.
   */
  private async write(name: string, data: Buffer | string): Promise<void> {
    if (this.reused) writeFileSync(join(this.path, name), data, { mode: 0o600 });
    else await writeFile(join(this.path, name), data, { mode: 0o600 });
  }

  async readAddress(): Promise<string | undefined> {
    try {
      return (await readFile(join(this.path, ADDRESS_FILE), 'utf8')).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /** The init's exit as the shim recorded it, if it did. */
  async initExit(): Promise<ExitRecord | undefined> {
    try {
      // berth-shim writes {pid, status, signal, exitedAt: ISO-8601 string}.
      const raw = JSON.parse(await readFile(join(this.path, INIT_EXIT_FILE), 'utf8')) as { status?: unknown; exitedAt?: unknown };
      if (typeof raw.status !== 'number') return undefined;
      const exitedAt = Date.parse(String(raw.exitedAt ?? '')) || Date.now();
      return { status: raw.status, exitedAt };
    } catch {
      return undefined;
    }
  }

  /**
   * Detaches the rootfs (whatever is stacked there; see detachAll) and gives the directory back to
   * BundleDirs, which moves it away at once and keeps or removes it in the background.
   */
  destroy(): void {
    detachAll(this.rootfs);
    this.dirs.release(this.path, { config: CONFIG_FILE, address: ADDRESS_FILE }, removeBundle);
  }
}

/**
 * The rootfs is removed with a non-recursive rmdir first: if anything were still mounted there, a
 * recursive delete would reach into the container's snapshot.
 */
async function removeBundle(dir: string): Promise<void> {
  await rmdir(join(dir, 'rootfs')).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await rm(dir, { recursive: true, force: true });
}

/** Every bundle on disk, for reconnecting after a restart. */
export async function listBundles(dirs: BundleDirs): Promise<Bundle[]> {
  const tasksDir = join(dirs.state, 'tasks');
  const namespaces = await readdir(tasksDir).catch(() => [] as string[]);
  const out: Bundle[] = [];
  for (const ns of namespaces) {
    for (const id of await readdir(join(tasksDir, ns)).catch(() => [] as string[])) out.push(Bundle.open(dirs, ns, id));
  }
  return out;
}

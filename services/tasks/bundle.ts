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
    const reused = await dirs.make(namespace, bundle.path);
    try {
      await writeFile(join(bundle.path, CONFIG_FILE), spec, { mode: 0o600 });
      if (!reused) await mkdir(bundle.rootfs, { mode: 0o755 });
      if (rootfs.length > 0) {
        await detachedReleased();
        await mountAll(rootfs, bundle.rootfs);
      }
      return bundle;
    } catch (err) {
      await bundle.destroy();
      throw err;
    }
  }

  /**
   * In place, not through a temporary file (an inode more; see BundleDirs): it is written once,
   * before the shim creates the task, so a crash that tears it leaves a bundle whose task was never
   * created, and an empty or unreadable address reads as no shim, which start-up cleans up.
   */
  async writeAddress(address: string): Promise<void> {
    await writeFile(join(this.path, ADDRESS_FILE), address, { mode: 0o600 });
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
   * Detaches the rootfs (whatever is stacked there; see detachAll) and removes the directory. The
   * rootfs is removed with a non-recursive rmdir first: if anything were still mounted there, a
   * recursive delete would reach into the container's snapshot.
   */
  async destroy(): Promise<void> {
    detachAll(this.rootfs);
    const kept = await this.dirs.retire(this.path, this.rootfs, { config: CONFIG_FILE, address: ADDRESS_FILE }).catch(() => false);
    if (kept) return;
    await rmdir(this.rootfs).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rm(this.path, { recursive: true, force: true });
  }
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

import { chmod, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detachAll, detachedReleased, mountAll } from '../mount/mount.js';
import type { MountSpec } from '../snapshots/types.js';
import type { ExitRecord } from './shim.js';

const ADDRESS_FILE = 'shim.address';
const INIT_EXIT_FILE = 'exit-init.json';

/**
 * A task's OCI bundle under `<state>/tasks/<namespace>/<id>`: config.json (the container's spec,
 * verbatim), rootfs/ (the snapshot mounted by berthd), and the shim's address, which is how a
 * restarted berthd finds the task again.
 */
export class Bundle {
  readonly rootfs: string;

  private constructor(
    readonly namespace: string,
    readonly id: string,
    readonly path: string,
  ) {
    this.rootfs = join(path, 'rootfs');
  }

  static dirOf(state: string, namespace: string, id: string): string {
    return join(state, 'tasks', namespace, id);
  }

  static open(state: string, namespace: string, id: string): Bundle {
    return new Bundle(namespace, id, Bundle.dirOf(state, namespace, id));
  }

  /** Writes config.json and mounts the rootfs; on failure nothing is left behind. */
  static async create(state: string, namespace: string, id: string, spec: Buffer, rootfs: MountSpec[]): Promise<Bundle> {
    const bundle = Bundle.open(state, namespace, id);
    // 0711 down to the bundle: see the state dir in daemon.ts (user-namespaced containers).
    // chmod after mkdir: berthd's umask (077) would strip the traverse bits.
    for (const dir of [join(state, 'tasks'), join(state, 'tasks', namespace)]) {
      await mkdir(dir, { recursive: true, mode: 0o711 });
      await chmod(dir, 0o711);
    }
    await mkdir(bundle.path, { mode: 0o711 });
    await chmod(bundle.path, 0o711);
    try {
      await writeFile(join(bundle.path, 'config.json'), spec, { mode: 0o600 });
      await mkdir(bundle.rootfs, { mode: 0o755 });
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

  async writeAddress(address: string): Promise<void> {
    const tmp = join(this.path, `${ADDRESS_FILE}.tmp`);
    await writeFile(tmp, address, { mode: 0o600 });
    await rename(tmp, join(this.path, ADDRESS_FILE));
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
    await rmdir(this.rootfs).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Every bundle on disk, for reconnecting after a restart. */
export async function listBundles(state: string): Promise<Bundle[]> {
  const tasksDir = join(state, 'tasks');
  const namespaces = await readdir(tasksDir).catch(() => [] as string[]);
  const out: Bundle[] = [];
  for (const ns of namespaces) {
    for (const id of await readdir(join(tasksDir, ns)).catch(() => [] as string[])) out.push(Bundle.open(state, ns, id));
  }
  return out;
}

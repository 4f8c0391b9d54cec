import { chmod, lstat, mkdir, readdir, rename, rm, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Most retired bundle directories kept; more than a burst of deletions needs is only disk litter. */
const POOL_MAX = 64;

/**
 * Where bundles live (`<state>/tasks/<namespace>/<id>`), and the directories of deleted tasks'
 * bundles, kept for the next task.
 *
 * Every inode a task makes and frees costs CPU: on ext4 without a journal the allocator skips each
 * inode freed in the last 5–35 s, and a burst of container deletions leaves hundreds of them (see
 * docs/shim.md, "Files per task"). A bundle's directory, its rootfs mount point, config.json and
 * shim.address are four such inodes per task; renaming a retired bundle into place makes none,
 * and overwriting its files keeps their inodes.
 */
export class BundleDirs {
  private readonly pool: string[] = [];
  private readonly poolDir: string;
  private poolMade = false;
  private seq = 0;
  private readonly parents = new Set<string>();

  constructor(readonly state: string) {
    this.poolDir = join(state, 'bundle-pool');
  }

  /**
   * Drops what an earlier berthd left in the pool: a rename now, the removal in the background,
   * so a restart does not wait for it.
   */
  async clearStale(): Promise<void> {
    const stale = `${this.poolDir}.stale-${process.pid}-${Date.now().toString(36)}`;
    try {
      await rename(this.poolDir, stale);
    } catch {
      return;
    }
    void rm(stale, { recursive: true, force: true }).catch(() => undefined);
  }

  /** `<state>/tasks/<namespace>`, made once per berthd with the modes a bundle needs. */
  async parentOf(namespace: string): Promise<string> {
    const dir = join(this.state, 'tasks', namespace);
    if (this.parents.has(dir)) return dir;
    // 0711 down to the bundle: see the state dir in daemon.ts (user-namespaced containers).
    // chmod after mkdir: berthd's umask (077) would strip the traverse bits.
    for (const d of [join(this.state, 'tasks'), dir]) {
      await mkdir(d, { recursive: true, mode: 0o711 });
      await chmod(d, 0o711);
    }
    this.parents.add(dir);
    return dir;
  }

  /**
   * Makes the bundle directory `path` (0711), from the pool if it can. Returns whether it was
   * reused: a reused one holds rootfs/ (empty), config.json and an empty shim.address.
   */
  async make(namespace: string, path: string): Promise<boolean> {
    await this.parentOf(namespace);
    const entry = this.pool.pop();
    if (entry !== undefined && (await this.claim(entry, path))) return true;
    try {
      await mkdir(path, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Someone removed the parent since it was made: make it again.
      this.parents.clear();
      await this.parentOf(namespace);
      await mkdir(path, { mode: 0o711 });
    }
    await chmod(path, 0o711);
    return false;
  }

  /**
   * Renames a pooled directory to `path`; false when the entry or the parent went (the caller
   * makes the bundle anew). rename(2) onto a non-empty directory fails as mkdir would; onto an
   * empty one (a leftover of a crash, which start-up removes) it replaces it, which is as good.
   */
  private async claim(entry: string, path: string): Promise<boolean> {
    try {
      await rename(entry, path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      this.pool.push(entry);
      throw code === 'ENOTEMPTY' ? Object.assign(new Error(`EEXIST: bundle ${path} exists`), { code: 'EEXIST' }) : err;
    }
  }

  /**
   * Keeps the bundle at `path` for reuse, once its rootfs (`rootfs`, already detached) is an empty
   * directory on the bundle's own filesystem. Files the runtime and shim wrote go; config.json
   * stays and shim.address is emptied, to be overwritten. False when it cannot be kept (pool
   * full, a directory other than rootfs, rootfs not empty or still a mount): the caller removes it.
   */
  async retire(path: string, rootfs: string, keep: { config: string; address: string }): Promise<boolean> {
    if (this.pool.length >= POOL_MAX) return false;
    const [dir, root, inRoot] = await Promise.all([lstat(path), lstat(rootfs).catch(() => undefined), readdir(rootfs).catch(() => undefined)]);
    if (!root?.isDirectory() || root.dev !== dir.dev || inRoot === undefined || inRoot.length > 0) return false;
    const entries = await readdir(path, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory() && e.name !== 'rootfs')) return false;
    // config.json is rewritten in place for the next task: no other name may share its inode (the
    // runtime links its copy to it, and has removed that link once the task is deleted).
    const config = await stat(join(path, keep.config)).catch(() => undefined);
    if (!config?.isFile() || config.nlink !== 1) return false;
    await Promise.all(
      entries.map((e) => {
        if (e.name === 'rootfs' || e.name === keep.config) return undefined;
        if (e.name === keep.address && e.isFile()) return truncate(join(path, e.name), 0);
        return unlink(join(path, e.name));
      }),
    );
    if (!this.poolMade) {
      await mkdir(this.poolDir, { recursive: true, mode: 0o700 });
      this.poolMade = true;
    }
    const entry = join(this.poolDir, `${process.pid}-${this.seq++}`);
    await rename(path, entry);
    this.pool.push(entry);
    return true;
  }
}

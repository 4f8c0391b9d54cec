import { chmod, lstat, mkdir, readdir, rename, rm, stat, truncate, unlink } from 'node:fs/promises';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** Most retired bundle directories kept; more than a burst of deletions needs is only disk litter. */
const POOL_MAX = 64;

/**
 * Where bundles live (`<state>/tasks/<namespace>/<id>`), and the directories of deleted tasks'
 * bundles, kept for the next task.
 *
 * Every inode a task makes and frees costs CPU: on ext4 without a journal the allocator skips each
 * inode of its block group freed in the last minute (six while that inode's table block is not
 * yet written back), and a burst of container deletions leaves hundreds of them (see
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
  private readonly releases = new Set<Promise<void>>();

  constructor(
    readonly state: string,
    private readonly log: Logger,
  ) {
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

  /** Makes `<state>/tasks/<namespace>`, once per berthd, with the modes a bundle needs. */
  private async makeParent(namespace: string): Promise<void> {
    const dir = join(this.state, 'tasks', namespace);
    if (this.parents.has(dir)) return;
    // 0711 down to the bundle: see the state dir in daemon.ts (user-namespaced containers).
    // chmod after mkdir: berthd's umask (077) would strip the traverse bits.
    for (const d of [join(this.state, 'tasks'), dir]) {
      await mkdir(d, { recursive: true, mode: 0o711 });
      await chmod(d, 0o711);
    }
    this.parents.add(dir);
  }

  /**
   * Makes the bundle directory `path` (0711), from the pool if it can. Returns whether it was
   * reused: a reused one holds rootfs/ (empty), config.json and an empty shim.address.
   */
  async make(namespace: string, path: string): Promise<boolean> {
    await this.makeParent(namespace);
    const entry = this.pool.pop();
    if (entry !== undefined && (await this.claim(entry, path))) return true;
    try {
      await mkdir(path, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Someone removed the parent since it was made: make it again.
      this.parents.clear();
      await this.makeParent(namespace);
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
   * Takes the bundle at `path` (its rootfs already detached) out of its place at once, so that its
   * id can be used again, and deals with its files in the background: kept for the next task when
   * it can be, else handed to `remove`. Deleting a task does not wait for either.
   */
  release(path: string, keep: { config: string; address: string }, remove: (dir: string) => Promise<void>): void {
    let dir = path;
    try {
      if (!this.poolMade) {
        mkdirSync(this.poolDir, { recursive: true, mode: 0o700 });
        this.poolMade = true;
      }
      const aside = join(this.poolDir, `${process.pid}-${this.seq++}`);
      renameSync(path, aside);
      dir = aside;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    }
    const kept = dir !== path && this.pool.length < POOL_MAX;
    const work = (kept ? this.emptied(dir, keep) : Promise.resolve(false))
      .then((ok) => (ok ? void this.pool.push(dir) : remove(dir)))
      .catch((err: unknown) => this.log.error('cannot remove a deleted task\'s bundle', { path: dir, error: err }))
      .finally(() => this.releases.delete(work));
    this.releases.add(work);
  }

  /** Resolves when the bundles released so far are kept or removed (at shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.releases]);
  }

  /**
   * Whether the bundle in `dir` can serve again: its rootfs an empty directory on the bundle's own
   * filesystem (not a mount), no other directory. If so, the files the runtime and shim wrote are
   * removed; config.json stays and shim.address is emptied, both to be overwritten.
   */
  private async emptied(dir: string, keep: { config: string; address: string }): Promise<boolean> {
    const rootfs = join(dir, 'rootfs');
    const [self, root, inRoot] = await Promise.all([lstat(dir), lstat(rootfs).catch(() => undefined), readdir(rootfs).catch(() => undefined)]);
    if (!root?.isDirectory() || root.dev !== self.dev || inRoot === undefined || inRoot.length > 0) return false;
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory() && e.name !== 'rootfs')) return false;
    // config.json is rewritten in place for the next task: no other name may share its inode (the
    // runtime links its copy to it, and has removed that link once the task is deleted).
    const config = await stat(join(dir, keep.config)).catch(() => undefined);
    if (!config?.isFile() || config.nlink !== 1) return false;
    await Promise.all(
      entries.map((e) => {
        if (e.name === 'rootfs' || e.name === keep.config) return undefined;
        if (e.name === keep.address && e.isFile()) return truncate(join(dir, e.name), 0);
        return unlink(join(dir, e.name));
      }),
    );
    return true;
  }
}

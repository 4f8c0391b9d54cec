import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join, relative } from 'node:path';
import { detachedReleased } from '../mount/mount.js';
import { markTopDir } from '../native/addon.js';
import type { MountSpec, SnapshotKind, SnapshotUsage } from './types.js';

/**
 * The overlayfs layout on disk: `<root>/<id>/fs` (the upper or the committed layer) and
 * `<root>/<id>/work`. Directories are built under a temporary name and renamed into place inside
 * the metadata transaction that creates the row, and renamed away inside the one that deletes it,
 * so after a crash every `<id>` directory without a row is an orphan that `cleanup` may remove.
 */
// Where snapshots that receive a layer are staged (see init).
const SPREAD_DIR = 'spread';

/** Most emptied snapshot directories kept for reuse (see recycle). */
const SKELETONS_MAX = 64;

export class OverlayLayout {
  /** Staging directories of creations in progress, which a concurrent cleanup must not take. */
  private readonly staging = new Set<string>();
  /** Emptied `<dir>/work` pairs of removed snapshots, names under root (see recycle). */
  private readonly skeletons: string[] = [];
  private skeletonSeq = 0;

  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.root, SPREAD_DIR), { recursive: true, mode: 0o700 });
    // Unpacking is mostly inode allocation. ext4 places a new directory's files in the block
    // group of that directory, and by default a subdirectory lands beside its parent: every
    // snapshot would share the groups of the ones before it, including groups whose inodes were
    // just freed by a removed image. Without a journal, ext4 steps over each inode freed in the
    // last minute one by one on every allocation: measured 550 µs per file created after an
    // image of 12k files was removed, 50 µs otherwise. Directories made in a top directory are
    // spread over fresh groups instead (their random staging names pick the starting group).
    // That placement looks at every group, ~0.9 ms per mkdir, so only snapshots that receive
    // a layer are staged there.
    markTopDir(join(this.root, SPREAD_DIR));
  }

  fsDir(id: number): string {
    return join(this.root, String(id), 'fs');
  }

  workDir(id: number): string {
    return join(this.root, String(id), 'work');
  }

  /**
   * A fresh directory pair under a temporary name; `place` moves it to its id. `forLayer` asks
   * for the placement that suits a snapshot about to be filled with a layer's files.
   */
  stage(forLayer: boolean): string {
    const name = `${forLayer ? `${SPREAD_DIR}/` : ''}new-${randomBytes(6).toString('hex')}`;
    this.staging.add(name);
    const staging = join(this.root, name);
    if (!forLayer && this.reuseSkeleton(staging)) return staging;
    mkdirSync(join(staging, 'fs'), { recursive: true, mode: 0o755 });
    // The fs dir becomes the container's "/" (an overlay takes its root's mode from the upper
    // dir): 0755 whatever berthd's umask, or a user-namespaced root could not even list it.
    chmodSync(join(staging, 'fs'), 0o755);
    mkdirSync(join(staging, 'work'), { mode: 0o700 });
    return staging;
  }

  /**
   * A new layer's root takes its owner from the parent's, as containerd's overlayfs does: an
   * image remapped for a user namespace (ctr --uidmap) must stay writable by the container's root.
   */
  inheritOwner(staging: string, parentId: number): void {
    const parent = lstatSync(this.fsDir(parentId));
    lchownSync(join(staging, 'fs'), parent.uid, parent.gid);
  }

  place(staging: string, id: number): void {
    renameSync(staging, join(this.root, String(id)));
    this.staging.delete(relative(this.root, staging));
  }

  discardStaged(staging: string): void {
    rmSync(staging, { recursive: true, force: true });
    this.staging.delete(relative(this.root, staging));
  }

  /** Renames the snapshot away (cheap, inside a transaction); the returned path is removed later. */
  retire(id: number): string {
    const doomed = join(this.root, `rm-${id}-${randomBytes(4).toString('hex')}`);
    try {
      renameSync(join(this.root, String(id)), doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return doomed;
  }

  private reuseSkeleton(staging: string): boolean {
    const name = this.skeletons.pop();
    if (name === undefined) return false;
    try {
      renameSync(join(this.root, name), staging);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Removes a retired snapshot's files (`doomed`, from retire) but keeps its directory and its
   * emptied work dir, with a new empty `fs`, for the next container snapshot: two inodes fewer made
   * and freed per container, and the one that is made is made here, in the background, not while
   * a container waits for its snapshot. Every inode costs CPU on ext4 without a journal, most
   * right after a burst of removals (see init, and docs/shim.md, "Files per task"). `fs` itself is
   * always new: a container may have left modes, owners, ACLs or attributes on its root that no
   * reset could be sure to undo. Anything unexpected, or a full pool, and the whole directory goes.
   */
  async recycle(doomed: string): Promise<void> {
    const reusable = this.skeletons.length < SKELETONS_MAX && (await this.unused(doomed).catch(() => false));
    if (!reusable || !(await this.emptySkeleton(doomed).catch(() => false))) {
      await this.removeAbsolute(doomed);
      return;
    }
    const name = `skeleton-${process.pid}-${this.skeletonSeq++}`;
    await rename(doomed, join(this.root, name));
    this.skeletons.push(name);
  }

  /**
   * Whether no overlay uses the retired snapshot's work dir any more: two overlays sharing one is
   * undefined behaviour. Mounts berthd detached are waited for (see detachedReleased); one still
   * mounted means the snapshot was removed from under a running task (`ctr snapshots rm`), and
   * its directory is not reused.
   */
  private async unused(doomed: string): Promise<boolean> {
    const id = /^rm-(\d+)-/.exec(basename(doomed))?.[1];
    if (id === undefined) return false;
    await detachedReleased();
    const work = `workdir=${this.workDir(Number(id))}`;
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    return !mounts.split('\n').some((line) => line.includes(`${work},`) || line.endsWith(work));
  }

  private async emptySkeleton(dir: string): Promise<boolean> {
    const names = (await readdir(dir)).sort();
    if (names.join('/') !== 'fs/work' || !(await lstat(join(dir, 'work'))).isDirectory()) return false;
    await rm(join(dir, 'fs'), { recursive: true, force: true });
    for (const name of await readdir(join(dir, 'work'))) await rm(join(dir, 'work', name), { recursive: true, force: true });
    await mkdir(join(dir, 'fs'), { mode: 0o755 });
    await chmod(join(dir, 'fs'), 0o755); // the container's "/", as stage makes it
    return true;
  }

  /** Mounts for a snapshot whose parents (nearest first) are given, as containerd's overlayfs returns them. */
  mounts(id: number, kind: SnapshotKind, parents: number[]): MountSpec[] {
    const lowers = parents.map((p) => this.fsDir(p));
    if (kind === 'view') {
      if (lowers.length === 0) return [{ type: 'bind', source: this.fsDir(id), options: ['ro', 'rbind'] }];
      if (lowers.length === 1) return [{ type: 'bind', source: lowers[0] ?? '', options: ['ro', 'rbind'] }];
      return [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${lowers.join(':')}`] }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: this.fsDir(id), options: ['rw', 'rbind'] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', `workdir=${this.workDir(id)}`, `upperdir=${this.fsDir(id)}`, `lowerdir=${lowers.join(':')}`],
      },
    ];
  }

  /** Snapshot id behind a directory we handed out as a mount source, upperdir or lowerdir. */
  idOfFsDir(path: string): number | undefined {
    const prefix = `${this.root}/`;
    if (!path.startsWith(prefix)) return undefined;
    const match = /^(\d+)\/fs\/?$/.exec(path.slice(prefix.length));
    return match ? Number(match[1]) : undefined;
  }

  /** Directories on disk: ids, plus leftovers (staging, retired, or ids without a row). */
  listEntries(): string[] {
    const names = [...readNames(this.root), ...readNames(join(this.root, SPREAD_DIR)).map((name) => `${SPREAD_DIR}/${name}`)];
    const kept = new Set(this.skeletons);
    return names.filter((name) => name !== SPREAD_DIR && !this.staging.has(name) && !kept.has(name));
  }

  async removePath(name: string): Promise<void> {
    await rm(join(this.root, name), { recursive: true, force: true });
  }

  async removeAbsolute(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
  }

  async usage(id: number): Promise<SnapshotUsage> {
    return diskUsage(this.fsDir(id));
  }
}

function readNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Bytes in use (allocated blocks) and inodes, counting each hard-linked inode once. */
async function diskUsage(dir: string): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  let inodes = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: false });
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    inodes++;
    size += st.blocks * 512;
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name));
    }
  };
  await walk(dir);
  return { size, inodes };
}

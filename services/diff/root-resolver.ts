import fs from 'node:fs';
import path from 'node:path';
import { resolveInRoot } from '../native/addon.js';
import { splitName, symlinkTargetName } from './entry-name.js';

// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS = 40;

/** Called when a missing parent directory was created, so the caller can give it metadata. */
export type DirCreatedHook = (name: string, hostPath: string) => void;

/**
 * Maps clean entry names of directories to host paths inside `root`, resolving every component
 * as if root were "/" (symlinks, absolute or relative, never lead out of it) and caching the
 * result, since a layer writes thousands of entries into a few hundred directories.
 *
 * Cached host paths contain no symlinks: each is root plus components checked to be real
 * directories (lstat) or resolved by the kernel with openat2(RESOLVE_IN_ROOT). The apply is the
 * only writer of the target, so a cached path stays valid until the apply itself removes or
 * replaces something, which it reports through forget().
 */
export class RootResolver {
  private readonly dirs = new Map<string, string>();

  constructor(
    readonly root: string,
    private readonly onDirCreated: DirCreatedHook = () => {},
  ) {
    this.dirs.set('', root);
  }

  /** Host path of directory `name`, creating missing directories (mode 0755) on the way. */
  ensureDir(name: string): string {
    const dir = this.lookup(name, true, 0);
    if (dir === null) throw new Error(`unreachable: directory ${name} was not created`);
    return dir;
  }

  /** Host path of directory `name`, or null if some component does not exist. */
  existingDir(name: string): string | null {
    return this.lookup(name, false, 0);
  }

  /**
   * Host path that entry `name` itself occupies (its last component is not followed), creating
   * missing parent directories.
   */
  entryPath(name: string): string {
    const { parent, base } = splitName(name);
    return `${this.ensureDir(parent)}/${base}`;
  }

  /** Like entryPath, or null when a parent directory does not exist. */
  existingEntryPath(name: string): string | null {
    const { parent, base } = splitName(name);
    const dir = this.existingDir(parent);
    return dir === null ? null : `${dir}/${base}`;
  }

  /**
   * Drops what the removal of `hostPath` invalidates: cached directories at or below it, or, for a
   * symlink, every cached name (names resolved through it do not show it in their host paths).
   */
  forget(hostPath: string, wasSymlink: boolean): void {
    if (wasSymlink) {
      this.dirs.clear();
      this.dirs.set('', this.root);
      return;
    }
    const below = `${hostPath}/`;
    for (const [name, dir] of this.dirs) {
      if (dir === hostPath || dir.startsWith(below)) this.dirs.delete(name);
    }
  }

  private lookup(name: string, create: boolean, followed: number): string | null {
    const cached = this.dirs.get(name);
    if (cached !== undefined) return cached;
    const { parent, base } = splitName(name);
    const parentDir = this.lookup(parent, create, followed);
    if (parentDir === null) return null;
    const candidate = `${parentDir}/${base}`;
    const stat = fs.lstatSync(candidate, { throwIfNoEntry: false });
    let dir: string | null;
    if (stat === undefined) {
      if (!create) return null;
      fs.mkdirSync(candidate, 0o755);
      this.onDirCreated(name, candidate);
      dir = candidate;
    } else if (stat.isDirectory()) {
      dir = candidate;
    } else if (stat.isSymbolicLink()) {
      dir = this.followSymlink(name, candidate, parentDir, create, followed);
      if (dir === null) return null;
    } else {
      throw Object.assign(new Error(`not a directory: ${candidate}`), { code: 'ENOTDIR' });
    }
    this.dirs.set(name, this.checkedInside(dir));
    return dir;
  }

  // The kernel resolves the link inside root when its target exists; a dangling link is followed
  // by name so that, as in containerd, the directories it names get created inside root.
  private followSymlink(name: string, link: string, parentDir: string, create: boolean, followed: number): string | null {
    if (followed >= MAX_SYMLINKS) throw Object.assign(new Error(`too many symlinks: ${link}`), { code: 'ELOOP' });
    try {
      const resolved = resolveInRoot(this.root, name);
      if ((resolved.mode & fs.constants.S_IFMT) !== fs.constants.S_IFDIR) {
        throw Object.assign(new Error(`not a directory: ${link}`), { code: 'ENOTDIR' });
      }
      return resolved.path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const linkDir = path.relative(this.root, parentDir);
    const target = symlinkTargetName(linkDir, fs.readlinkSync(link));
    return this.lookup(target, create, followed + 1);
  }

  private checkedInside(dir: string): string {
    if (dir !== this.root && !dir.startsWith(`${this.root}/`)) {
      throw new Error(`resolved path ${dir} is outside ${this.root}`);
    }
    return dir;
  }
}

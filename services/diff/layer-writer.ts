import fs from 'node:fs';
import type { Header } from 'tar-stream';
import { invalidArgument } from '../errors.js';
import { mknod } from '../native/addon.js';
import { cleanEntryName, splitName } from './entry-name.js';
import { applyPathMeta, applyTimes, applyXattrs, entryMeta, type EntryMeta } from './entry-meta.js';
import { copyParentDirMeta } from './parent-meta.js';
import { RootResolver } from './root-resolver.js';
import { WHITEOUT_META_PREFIX, classifyWhiteout, emptyOpaqueDir, makeOverlayWhiteout, markOverlayOpaque } from './whiteouts.js';

export type WhiteoutMode = 'overlay' | 'delete';

const FILE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** Receives a regular file's data; exactly one of end() or abort() is called. */
export interface FileSink {
  write(chunk: Buffer): void;
  end(): void;
  abort(): void;
}

/**
 * Applies tar entries, one at a time and synchronously, to a target directory. Every name is
 * resolved inside the target (RootResolver); the last component is created with O_EXCL-style
 * calls that never follow a symlink, and an existing entry is replaced as the tar-apply rules
 * say: everything is removed first except a directory meeting a directory, which merges.
 */
export class LayerWriter {
  private readonly resolver: RootResolver;
  // Host paths this layer wrote, which an opaque directory keeps; only a merged tree needs them.
  private readonly written: Set<string> | null;
  // Directory mtimes are set last: writing children changes them.
  private readonly dirTimes = new Map<string, number>();
  private openFd: number | null = null;

  constructor(
    root: string,
    private readonly whiteouts: WhiteoutMode,
    parents: readonly string[],
  ) {
    this.written = whiteouts === 'delete' ? new Set() : null;
    this.resolver = new RootResolver(root, (name, hostPath) => {
      this.written?.add(hostPath);
      const mtime = copyParentDirMeta(parents, name, hostPath);
      if (mtime !== null) this.dirTimes.set(hostPath, mtime);
    });
  }

  /**
   * Applies one entry; returns a sink for a regular file's data, else null. `rawPax` is the
   * entry's PAX header as bytes, if it had one.
   */
  entry(header: Header, rawPax: Buffer | null): FileSink | null {
    const name = cleanEntryName(header.name);
    if (name === '') return null; // "./": the target's own metadata belongs to the snapshotter.
    if (isAufsMetadata(name)) return null;
    const { parent, base } = splitName(name);
    const whiteout = classifyWhiteout(base);
    if (whiteout !== null) {
      if (whiteout.kind === 'opaque') this.opaque(parent);
      else if (whiteout.kind === 'remove') this.whiteout(parent, whiteout.name, entryMeta(header, rawPax));
      return null;
    }
    if (isSparse(header)) throw invalidArgument(`layer entry ${header.name}: sparse files are not supported`);
    const hostPath = this.resolver.entryPath(name);
    const meta = entryMeta(header, rawPax);
    this.written?.add(hostPath);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.file(hostPath, meta);
      case 'directory':
        this.directory(hostPath, meta);
        return null;
      case 'symlink':
        this.create(hostPath, () => fs.symlinkSync(header.linkname, hostPath));
        this.finishNode(hostPath, meta, true);
        return null;
      case 'link':
        this.hardlink(hostPath, header, meta);
        return null;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.create(hostPath, () => mknod(hostPath, nodeType(header.type) | meta.mode, header.devmajor, header.devminor));
        this.finishNode(hostPath, meta, false);
        return null;
      default:
        throw invalidArgument(`layer entry ${header.name}: unsupported tar entry type ${String(header.type)}`);
    }
  }

  /** Sets directory times once every entry is written. */
  finish(): void {
    for (const [hostPath, mtime] of this.dirTimes) applyTimes(hostPath, mtime);
  }

  /** Closes a file left open by an entry that never ended (abort, corrupt stream). */
  close(): void {
    if (this.openFd !== null) {
      fs.closeSync(this.openFd);
      this.openFd = null;
    }
  }

  private file(hostPath: string, meta: EntryMeta): FileSink {
    const fd = this.create(hostPath, () => fs.openSync(hostPath, FILE_FLAGS, 0o600));
    this.openFd = fd;
    return {
      write: (chunk) => {
        for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off);
      },
      end: () => {
        fs.fchownSync(fd, meta.uid, meta.gid);
        applyXattrs(hostPath, meta);
        fs.fchmodSync(fd, meta.mode);
        fs.futimesSync(fd, meta.mtime, meta.mtime);
        this.close();
      },
      abort: () => this.close(),
    };
  }

  private directory(hostPath: string, meta: EntryMeta): void {
    try {
      fs.mkdirSync(hostPath, 0o700);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!fs.lstatSync(hostPath).isDirectory()) {
        this.remove(hostPath);
        fs.mkdirSync(hostPath, 0o700);
      }
    }
    applyPathMeta(hostPath, meta, false);
    this.dirTimes.set(hostPath, meta.mtime);
  }

  // Hardlink targets are names in the same layer, resolved inside the target like any entry.
  private hardlink(hostPath: string, header: Header, meta: EntryMeta): void {
    const targetName = cleanEntryName(header.linkname);
    const target = targetName === '' ? null : this.resolver.existingEntryPath(targetName);
    const stat = target === null ? undefined : fs.lstatSync(target, { throwIfNoEntry: false });
    if (target === null || stat === undefined) {
      throw invalidArgument(`layer entry ${header.name}: hardlink target ${JSON.stringify(header.linkname)} does not exist in the layer`);
    }
    if (target === hostPath) return;
    this.create(hostPath, () => fs.linkSync(target, hostPath));
    this.finishNode(hostPath, meta, stat.isSymbolicLink());
  }

  private finishNode(hostPath: string, meta: EntryMeta, isSymlink: boolean): void {
    applyPathMeta(hostPath, meta, isSymlink);
    applyTimes(hostPath, meta.mtime);
  }

  // Creation is tried first because the target is usually empty; only on EEXIST is the old
  // entry removed (whatever its type) and the creation repeated.
  private create<T>(hostPath: string, make: () => T): T {
    try {
      return make();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.remove(hostPath);
    return make();
  }

  private remove(hostPath: string): void {
    const stat = fs.lstatSync(hostPath, { throwIfNoEntry: false });
    if (stat === undefined) return;
    fs.rmSync(hostPath, { recursive: true, force: true });
    this.resolver.forget(hostPath, stat.isSymbolicLink());
    const below = `${hostPath}/`;
    for (const dir of this.dirTimes.keys()) {
      if (dir === hostPath || dir.startsWith(below)) this.dirTimes.delete(dir);
    }
  }

  private whiteout(parent: string, name: string, meta: EntryMeta): void {
    if (this.whiteouts === 'overlay') {
      const hostPath = `${this.resolver.ensureDir(parent)}/${name}`;
      this.create(hostPath, () => makeOverlayWhiteout(hostPath, meta.uid, meta.gid));
      return;
    }
    const dir = this.resolver.existingDir(parent);
    if (dir !== null) this.remove(`${dir}/${name}`);
  }

  private opaque(parent: string): void {
    if (this.whiteouts === 'overlay') {
      markOverlayOpaque(this.resolver.ensureDir(parent));
      return;
    }
    const dir = this.resolver.existingDir(parent);
    if (dir !== null) emptyOpaqueDir(dir, this.written ?? new Set(), (hostPath) => this.remove(hostPath));
  }
}

// Old AUFS-based Docker kept bookkeeping directories (.wh..wh.plnk, .wh..wh.orph) at the layer
// root; nothing in or under them belongs in a tree.
function isAufsMetadata(name: string): boolean {
  return name.startsWith(WHITEOUT_META_PREFIX);
}

// PAX-format sparse files look like regular files whose data starts with a block map; written
// as is they would silently hold the wrong bytes. (GNU-format ones have their own, unknown, type.)
function isSparse(header: Header): boolean {
  const pax = header.pax;
  return pax !== null && typeof pax === 'object' && Object.keys(pax).some((key) => key.startsWith('GNU.sparse.'));
}

function nodeType(type: Header['type']): number {
  if (type === 'character-device') return fs.constants.S_IFCHR;
  if (type === 'block-device') return fs.constants.S_IFBLK;
  return fs.constants.S_IFIFO;
}

import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import type { Header, Pack } from 'tar-stream';
import { type Change, entryXattrs } from './changes.js';
import { feedWritable } from './feed.js';
import { XATTR_PREFIX } from './pax-xattrs.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts.js';

type EntryHeader = Partial<Header> & Pick<Header, 'name'>;

// Files up to this size are read in one call; larger ones are streamed into the archive.
const SMALL_FILE = 1 << 20;
// Whiteouts carry no metadata of their own; a fixed time keeps diffs reproducible.
const WHITEOUT_TIME = new Date(0);

/**
 * Turns changes into OCI layer tar entries: whiteout files for deletions and opaque directories,
 * hardlinks for inodes already written, and the parent directories of every change (so that an
 * upperdir apply recreates them with their real metadata, as containerd's writer does).
 */
export class ChangeWriter {
  private readonly dirsWritten = new Set<string>(['']);
  private readonly inodes = new Map<string, string>();

  constructor(
    private readonly pack: Pack,
    /** Host directory the changes' names are relative to (for parent directories). */
    private readonly root: string,
  ) {}

  async write(change: Change): Promise<void> {
    const slash = change.name.lastIndexOf('/');
    const parent = slash < 0 ? '' : change.name.slice(0, slash);
    await this.writeParents(parent);
    switch (change.kind) {
      case 'delete':
        return this.entry(emptyFile(`${parent === '' ? '' : `${parent}/`}${WHITEOUT_PREFIX}${change.name.slice(slash + 1)}`));
      case 'opaque':
        await this.writeParents(change.name);
        return this.entry(emptyFile(`${change.name}/${OPAQUE_MARKER}`));
      case 'write':
        return this.writeNode(change.name, change.hostPath, change.stat);
    }
  }

  private async writeParents(dir: string): Promise<void> {
    if (this.dirsWritten.has(dir)) return;
    const slash = dir.lastIndexOf('/');
    await this.writeParents(slash < 0 ? '' : dir.slice(0, slash));
    const hostPath = `${this.root}/${dir}`;
    await this.writeNode(dir, hostPath, fs.lstatSync(hostPath));
  }

  private async writeNode(name: string, hostPath: string, stat: fs.Stats): Promise<void> {
    if (stat.isDirectory() && this.dirsWritten.has(name)) return;
    const header = baseHeader(name, stat);
    const xattrs = entryXattrs(hostPath);
    if (xattrs.size > 0) header.xattrs = xattrs;
    if (stat.isDirectory()) {
      this.dirsWritten.add(name);
      return this.entry({ ...header, type: 'directory' });
    }
    if (stat.isSymbolicLink()) return this.entry({ ...header, type: 'symlink', linkname: fs.readlinkSync(hostPath) });
    if (stat.isCharacterDevice() || stat.isBlockDevice()) {
      const type = stat.isCharacterDevice() ? 'character-device' : 'block-device';
      return this.entry({ ...header, type, devmajor: major(stat.rdev), devminor: minor(stat.rdev) });
    }
    if (stat.isFIFO()) return this.entry({ ...header, type: 'fifo' });
    if (!stat.isFile()) return; // sockets and the like have no place in a layer
    if (stat.nlink > 1) {
      const key = `${stat.dev}:${stat.ino}`;
      const first = this.inodes.get(key);
      if (first !== undefined) return this.entry({ ...header, type: 'link', linkname: first });
      this.inodes.set(key, name);
    }
    return this.file({ ...header, type: 'file', size: stat.size }, hostPath, stat.size);
  }

  private async file(entry: NodeEntry, hostPath: string, size: number): Promise<void> {
    if (size <= SMALL_FILE) return this.entry(entry, fs.readFileSync(hostPath));
    const header = this.withXattrs(entry);
    let settle: (err?: Error | null) => void = () => {};
    const written = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    const sink = this.pack.entry(header, (err) => settle(err));
    // If feeding fails the entry callback reports the same failure: only one may surface.
    written.catch(() => {});
    await feedWritable(fs.createReadStream(hostPath, { highWaterMark: SMALL_FILE }), sink);
    await written;
  }

  private entry(entry: NodeEntry, data: Buffer = Buffer.alloc(0)): Promise<void> {
    const header = this.withXattrs(entry);
    return new Promise((resolve, reject) => {
      this.pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * The tar header for an entry, with its xattrs as PAX SCHILY.xattr records. tar-stream encodes
   * PAX values as UTF-8 strings and cannot write a PAX header of our own, so a binary value
   * (security.capability) is left out rather than written corrupted, which would make applying
   * the layer fail.
   */
  private withXattrs(entry: NodeEntry): EntryHeader {
    const { xattrs, ...header } = entry;
    const recordable = [...(xattrs ?? [])].filter(([, value]) => isUtf8(value));
    if (recordable.length === 0) return header;
    return { ...header, pax: Object.fromEntries(recordable.map(([key, value]) => [`${XATTR_PREFIX}${key}`, value.toString('utf8')])) };
  }
}

/** A tar header plus the xattrs to record for it. */
type NodeEntry = EntryHeader & { xattrs?: Map<string, Buffer> };

function baseHeader(name: string, stat: fs.Stats): NodeEntry {
  return {
    name,
    mode: stat.mode & 0o7777,
    uid: stat.uid,
    gid: stat.gid,
    // Whole seconds, as containerd writes them: sub-second times make diffs irreproducible.
    mtime: new Date(Math.floor(stat.mtimeMs / 1000) * 1000),
  };
}

function emptyFile(name: string): EntryHeader {
  return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: WHITEOUT_TIME };
}

// Linux's dev_t encoding (glibc gnu_dev_major/minor), for the 32 bits Node's stat reports exactly.
const major = (rdev: number): number => (rdev >>> 8) & 0xfff;
const minor = (rdev: number): number => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);

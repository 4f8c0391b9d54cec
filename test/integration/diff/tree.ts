import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { lgetxattr, llistxattr } from '../../../services/native/addon.js';

/** What a layer is expected to reproduce about one tree entry. */
export interface EntrySummary {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  /** For files sharing an inode with another name in the tree: the first such name (walk order). */
  inode?: string;
  mtime?: number;
  xattrs?: Record<string, string>;
}

export interface SummaryOptions {
  /** Include mtimes in whole seconds (layers truncate to seconds). */
  mtimes?: boolean;
  xattrs?: boolean;
}

/** Every entry below `root` by relative name, in sorted walk order. */
export function summarizeTree(root: string, opts: SummaryOptions = {}): Record<string, EntrySummary> {
  const out: Record<string, EntrySummary> = {};
  const inodes = new Map<string, string[]>();
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const hostPath = `${dir}/${name}`;
      const relName = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(hostPath);
      const entry: EntrySummary = { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isFile()) {
        entry.size = st.size;
        entry.sha256 = createHash('sha256').update(fs.readFileSync(hostPath)).digest('hex');
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          inodes.set(key, [...(inodes.get(key) ?? []), relName]);
        }
      }
      if (st.isSymbolicLink()) entry.link = fs.readlinkSync(hostPath);
      if (st.isCharacterDevice() || st.isBlockDevice()) entry.rdev = st.rdev;
      if (opts.mtimes === true && !st.isSymbolicLink()) entry.mtime = Math.floor(st.mtimeMs / 1000);
      if (opts.xattrs === true) {
        const names = llistxattr(hostPath).filter((n) => !n.startsWith('trusted.overlay.')).sort();
        if (names.length > 0) entry.xattrs = Object.fromEntries(names.map((n) => [n, lgetxattr(hostPath, n).toString('base64')]));
      }
      out[relName] = entry;
      if (st.isDirectory()) walk(hostPath, relName);
    }
  };
  walk(root, '');
  // Links to names outside the tree (an overlay's lower layer) are not links a layer can carry.
  for (const names of inodes.values()) {
    if (names.length < 2) continue;
    for (const name of names) (out[name] as EntrySummary).inode = names[0];
  }
  return out;
}

function typeOf(st: fs.Stats): EntrySummary['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

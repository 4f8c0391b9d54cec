import fs from 'node:fs';
import { lgetxattr, llistxattr } from '../native/addon.js';

/**
 * One difference between two trees, in walk order (depth first, names sorted bytewise, so a diff
 * of the same trees is always the same tar):
 * - write: `name` exists in the upper tree at `hostPath` and is new or changed;
 * - delete: `name` exists only in the lower tree;
 * - opaque: directory `name` hides everything below it in lower layers.
 */
export type Change =
  | { kind: 'write'; name: string; hostPath: string; stat: fs.Stats }
  | { kind: 'delete'; name: string }
  | { kind: 'opaque'; name: string };

const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/** Names in a directory, sorted bytewise. */
function sortedNames(dir: string): string[] {
  return fs
    .readdirSync(dir, { encoding: 'buffer' })
    .sort(Buffer.compare)
    .map((name) => name.toString());
}

const join = (parent: string, name: string): string => (parent === '' ? name : `${parent}/${name}`);

/** Changes from tree `lower` (null: empty) to tree `upper`, by walking both side by side. */
export function* treeChanges(lower: string | null, upper: string): Generator<Change> {
  yield* walkPair(lower, upper, '');
}

function* walkPair(lowerDir: string | null, upperDir: string, rel: string): Generator<Change> {
  const lowerNames = lowerDir === null ? [] : sortedNames(lowerDir);
  const upperNames = sortedNames(upperDir);
  let i = 0;
  let j = 0;
  for (;;) {
    const l = lowerNames[i];
    const u = upperNames[j];
    if (l === undefined && u === undefined) return;
    const order = l === undefined ? 1 : u === undefined ? -1 : compareNames(l, u);
    if (order < 0 && l !== undefined) {
      yield { kind: 'delete', name: join(rel, l) };
      i++;
    } else if (u !== undefined) {
      const upperPath = `${upperDir}/${u}`;
      const upperStat = fs.lstatSync(upperPath);
      const name = join(rel, u);
      j++;
      if (order > 0 || lowerDir === null) {
        yield* added(upperPath, upperStat, name);
        continue;
      }
      i++;
      const lowerPath = `${lowerDir}/${u}`;
      const lowerStat = fs.lstatSync(lowerPath);
      const same = sameEntry(lowerPath, lowerStat, upperPath, upperStat);
      if (lowerStat.isDirectory() && upperStat.isDirectory()) {
        if (!same) yield { kind: 'write', name, hostPath: upperPath, stat: upperStat };
        yield* walkPair(lowerPath, upperPath, name);
      } else if (!same) {
        yield* added(upperPath, upperStat, name);
      }
    }
  }
}

const compareNames = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

function* added(hostPath: string, stat: fs.Stats, name: string): Generator<Change> {
  yield { kind: 'write', name, hostPath, stat };
  if (!stat.isDirectory()) return;
  for (const child of sortedNames(hostPath)) {
    const childPath = `${hostPath}/${child}`;
    yield* added(childPath, fs.lstatSync(childPath), join(name, child));
  }
}

/**
 * Changes recorded in an overlay upperdir whose lower layers are the diff's lower tree: every
 * entry is a write, except overlay's whiteouts (0/0 char devices) and opaque directories.
 */
export function* overlayUpperChanges(upperdir: string): Generator<Change> {
  yield* walkUpper(upperdir, '');
}

function* walkUpper(dir: string, rel: string): Generator<Change> {
  for (const name of sortedNames(dir)) {
    const hostPath = `${dir}/${name}`;
    const stat = fs.lstatSync(hostPath);
    const entryName = join(rel, name);
    if (stat.isCharacterDevice() && stat.rdev === 0) {
      yield { kind: 'delete', name: entryName };
      continue;
    }
    yield { kind: 'write', name: entryName, hostPath, stat };
    if (!stat.isDirectory()) continue;
    if (isOpaque(hostPath)) yield { kind: 'opaque', name: entryName };
    yield* walkUpper(hostPath, entryName);
  }
}

function isOpaque(dir: string): boolean {
  try {
    return lgetxattr(dir, 'trusted.overlay.opaque').toString() === 'y';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENODATA') return false;
    throw err;
  }
}

/** Whether a lower and an upper entry are the same as far as a layer can tell. */
function sameEntry(lowerPath: string, lower: fs.Stats, upperPath: string, upper: fs.Stats): boolean {
  // An overlay shows an untouched lower file as that very inode: nothing to compare.
  if (!lower.isDirectory() && lower.dev === upper.dev && lower.ino === upper.ino) return true;
  if (lower.mode !== upper.mode || lower.uid !== upper.uid || lower.gid !== upper.gid) return false;
  if (lower.isSymbolicLink()) return fs.readlinkSync(lowerPath) === fs.readlinkSync(upperPath) && sameXattrs(lowerPath, upperPath);
  if (lower.isCharacterDevice() || lower.isBlockDevice()) {
    if (lower.rdev !== upper.rdev) return false;
  }
  if (lower.mtimeMs !== upper.mtimeMs) return false;
  if (lower.isFile()) {
    if (lower.size !== upper.size) return false;
    // Layers store whole-second mtimes, so an edit within the same second could hide behind an
    // equal size and mtime: compare the bytes then, as containerd does.
    if (lower.mtimeMs % 1000 === 0 && !sameContent(lowerPath, upperPath, lower.size)) return false;
  }
  return sameXattrs(lowerPath, upperPath);
}

/** Xattrs of an entry as a layer records them (overlay's own bookkeeping excluded). */
export function entryXattrs(hostPath: string): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  for (const name of llistxattr(hostPath).sort()) {
    if (!name.startsWith(OVERLAY_XATTR_PREFIX)) xattrs.set(name, lgetxattr(hostPath, name));
  }
  return xattrs;
}

function sameXattrs(a: string, b: string): boolean {
  const xa = entryXattrs(a);
  const xb = entryXattrs(b);
  if (xa.size !== xb.size) return false;
  for (const [name, value] of xa) {
    const other = xb.get(name);
    if (other === undefined || !other.equals(value)) return false;
  }
  return true;
}

const COMPARE_CHUNK = 1 << 20;

function sameContent(a: string, b: string, size: number): boolean {
  const fa = fs.openSync(a, 'r');
  try {
    const fb = fs.openSync(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(Math.min(size, COMPARE_CHUNK));
      const bb = Buffer.allocUnsafe(ba.length);
      for (let pos = 0; pos < size; pos += ba.length) {
        const na = fs.readSync(fa, ba, 0, ba.length, pos);
        const nb = fs.readSync(fb, bb, 0, bb.length, pos);
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na === 0) break;
      }
      return true;
    } finally {
      fs.closeSync(fb);
    }
  } finally {
    fs.closeSync(fa);
  }
}

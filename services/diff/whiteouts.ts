import fs from 'node:fs';
import { lsetxattr, mknod } from '../native/addon.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
// Other ".wh..wh." names are AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning in a layer.
export const WHITEOUT_META_PREFIX = '.wh..wh.';

export type WhiteoutKind = { kind: 'opaque' } | { kind: 'remove'; name: string } | { kind: 'ignore' } | null;

/** What a base name means as a whiteout; null for an ordinary name. */
export function classifyWhiteout(base: string): WhiteoutKind {
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'ignore' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  // ".wh." alone, ".wh.." and ".wh..." would name the directory itself or its parent.
  if (name === '' || name === '.' || name === '..') return { kind: 'ignore' };
  return { kind: 'remove', name };
}

/** Overlay's form of a deleted name: a 0/0 character device owned like the whiteout entry. */
export function makeOverlayWhiteout(hostPath: string, uid: number, gid: number): void {
  mknod(hostPath, fs.constants.S_IFCHR, 0, 0);
  fs.lchownSync(hostPath, uid, gid);
}

/** Overlay's form of an opaque directory: lower layers' entries under it are hidden. */
export function markOverlayOpaque(dirHostPath: string): void {
  lsetxattr(dirHostPath, 'trusted.overlay.opaque', Buffer.from('y'));
}

/**
 * A merged tree's form of an opaque directory: remove every entry below `dirHostPath` that this
 * layer did not write, keeping what it did (and descending into directories it wrote, which may
 * still hold older entries).
 */
export function emptyOpaqueDir(dirHostPath: string, written: ReadonlySet<string>, remove: (hostPath: string) => void): void {
  for (const child of fs.readdirSync(dirHostPath, { withFileTypes: true })) {
    const childPath = `${dirHostPath}/${child.name}`;
    if (!written.has(childPath)) remove(childPath);
    else if (child.isDirectory()) emptyOpaqueDir(childPath, written, remove);
  }
}

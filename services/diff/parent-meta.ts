import fs from 'node:fs';
import { lgetxattr, llistxattr, lsetxattr, resolveInRoot } from '../native/addon.js';

// Overlay's own bookkeeping (opaque, redirect, origin) belongs to the lower layer, not the copy.
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/**
 * A directory that an upper layer creates only as the parent of its entries already exists in a
 * lower layer: give the new upperdir copy the lower directory's mode, owner and xattrs (as
 * containerd's mkparent does), else the merged view would show a root-owned 0755 directory.
 * Returns the lower directory's mtime to restore later, or null when no lower layer has it.
 */
export function copyParentDirMeta(parents: readonly string[], name: string, hostPath: string): number | null {
  for (const parent of parents) {
    let lowerPath: string;
    try {
      const resolved = resolveInRoot(parent, name);
      if ((resolved.mode & fs.constants.S_IFMT) !== fs.constants.S_IFDIR) return null;
      lowerPath = resolved.path;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw err;
    }
    const stat = fs.lstatSync(lowerPath);
    fs.lchownSync(hostPath, stat.uid, stat.gid);
    fs.chmodSync(hostPath, stat.mode & 0o7777);
    copyXattrs(lowerPath, hostPath);
    return stat.mtimeMs / 1000;
  }
  return null;
}

function copyXattrs(from: string, to: string): void {
  for (const name of llistxattr(from)) {
    if (!name.startsWith(OVERLAY_XATTR_PREFIX)) lsetxattr(to, name, lgetxattr(from, name));
  }
}

import fs from 'node:fs';
import type { Header } from 'tar-stream';
import { lsetxattr } from '../native/addon.js';
import { XATTR_PREFIX, paxXattrs } from './pax-xattrs.js';


/** Ownership, permissions, time and xattrs of one tar entry, PAX overrides applied. */
export interface EntryMeta {
  uid: number;
  gid: number;
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  /** Seconds since the epoch, fractional when PAX gives sub-second precision. */
  mtime: number;
  xattrs: Array<[name: string, value: Buffer]>;
}

// tar-stream applies PAX path/linkpath/size itself; uid, gid and mtime overrides (ids beyond the
// octal field, sub-second times) and xattrs are left to the reader. Xattr values come from the
// raw PAX header when there is one, as tar-stream's strings cannot hold binary values.
export function entryMeta(header: Header, rawPax: Buffer | null): EntryMeta {
  const pax = paxRecords(header);
  const xattrs = rawPax !== null ? paxXattrs(rawPax) : stringXattrs(pax);
  return {
    uid: paxNumber(pax.uid) ?? header.uid,
    gid: paxNumber(pax.gid) ?? header.gid,
    mode: header.mode & 0o7777,
    mtime: paxNumber(pax.mtime) ?? header.mtime.getTime() / 1000,
    xattrs,
  };
}

function stringXattrs(pax: Record<string, string>): Array<[string, Buffer]> {
  const xattrs: Array<[string, Buffer]> = [];
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith(XATTR_PREFIX)) xattrs.push([key.slice(XATTR_PREFIX.length), Buffer.from(value, 'utf8')]);
  }
  return xattrs;
}

function paxRecords(header: Header): Record<string, string> {
  return header.pax !== null && typeof header.pax === 'object' ? (header.pax as Record<string, string>) : {};
}

function paxNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** Sets the entry's xattrs; filesystems without xattr support only lose them (as in containerd). */
export function applyXattrs(hostPath: string, meta: EntryMeta): void {
  for (const [name, value] of meta.xattrs) {
    try {
      lsetxattr(hostPath, name, value);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTSUP') throw err;
    }
  }
}

/**
 * Owner, xattrs and mode of a node reached by a path whose last component we just created (so it
 * is not a symlink unless `isSymlink`). chown before chmod: chown clears setuid/setgid.
 */
export function applyPathMeta(hostPath: string, meta: EntryMeta, isSymlink: boolean): void {
  fs.lchownSync(hostPath, meta.uid, meta.gid);
  applyXattrs(hostPath, meta);
  if (!isSymlink) fs.chmodSync(hostPath, meta.mode);
}

export function applyTimes(hostPath: string, mtime: number): void {
  fs.lutimesSync(hostPath, mtime, mtime);
}

import { mountConstants as C } from '../native/addon.js';

/** mount(2) arguments from containerd-style string options. */
export interface ParsedOptions {
  flags: number;
  /** Propagation changes, applied by separate mount calls after the mount itself. */
  propagation: number[];
  /** Filesystem-specific options (lowerdir=..., index=off), comma-joined for mount(2). */
  data: string[];
}

// [set, flag]: options that set or clear a mount flag, as mount(8) and containerd name them.
const FLAG_OPTIONS: ReadonlyMap<string, readonly [set: boolean, flag: number]> = new Map([
  ['async', [false, C.MS_SYNCHRONOUS]],
  ['atime', [false, C.MS_NOATIME]],
  ['bind', [true, C.MS_BIND]],
  ['defaults', [false, 0]],
  ['dev', [false, C.MS_NODEV]],
  ['diratime', [false, C.MS_NODIRATIME]],
  ['dirsync', [true, C.MS_DIRSYNC]],
  ['exec', [false, C.MS_NOEXEC]],
  ['mand', [true, C.MS_MANDLOCK]],
  ['noatime', [true, C.MS_NOATIME]],
  ['nodev', [true, C.MS_NODEV]],
  ['nodiratime', [true, C.MS_NODIRATIME]],
  ['noexec', [true, C.MS_NOEXEC]],
  ['nomand', [false, C.MS_MANDLOCK]],
  ['norelatime', [false, C.MS_RELATIME]],
  ['nostrictatime', [false, C.MS_STRICTATIME]],
  ['nosuid', [true, C.MS_NOSUID]],
  ['rbind', [true, C.MS_BIND | C.MS_REC]],
  ['relatime', [true, C.MS_RELATIME]],
  ['remount', [true, C.MS_REMOUNT]],
  ['ro', [true, C.MS_RDONLY]],
  ['rw', [false, C.MS_RDONLY]],
  ['strictatime', [true, C.MS_STRICTATIME]],
  ['suid', [false, C.MS_NOSUID]],
  ['sync', [true, C.MS_SYNCHRONOUS]],
]);

const PROPAGATION_OPTIONS: ReadonlyMap<string, number> = new Map([
  ['private', C.MS_PRIVATE],
  ['rprivate', C.MS_PRIVATE | C.MS_REC],
  ['shared', C.MS_SHARED],
  ['rshared', C.MS_SHARED | C.MS_REC],
  ['slave', C.MS_SLAVE],
  ['rslave', C.MS_SLAVE | C.MS_REC],
  ['unbindable', C.MS_UNBINDABLE],
  ['runbindable', C.MS_UNBINDABLE | C.MS_REC],
]);

export function parseMountOptions(options: readonly string[]): ParsedOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const option of options) {
    const flag = FLAG_OPTIONS.get(option);
    const prop = PROPAGATION_OPTIONS.get(option);
    if (flag !== undefined) flags = flag[0] ? flags | flag[1] : flags & ~flag[1];
    else if (prop !== undefined) propagation.push(prop);
    else data.push(option);
  }
  return { flags: flags >>> 0, propagation, data };
}

/**
 * The same overlay seen read-only: the upperdir becomes the topmost lowerdir and workdir goes,
 * since a read-only mount needs no workdir and the snapshot's may be in use by a live mount.
 */
export function readonlyOverlayOptions(options: readonly string[]): string[] {
  const upper = options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  const kept = options.filter((o) => !o.startsWith('upperdir=') && !o.startsWith('workdir=') && o !== 'rw');
  const withUpper = upper === undefined ? kept : kept.map((o) => (o.startsWith('lowerdir=') ? `lowerdir=${upper}:${o.slice('lowerdir='.length)}` : o));
  return [...withUpper, 'ro'];
}

import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mount, mountConstants as C, umount2 } from '../native/addon.js';
import { parseMountOptions, readonlyOverlayOptions } from './options.js';

/** containerd.types.Mount: what a snapshotter returns and what mountAll performs. */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/**
 * Performs the mounts in order on `target` (each stacked on the previous, as containerd does; a
 * mount's own `target` is a path below `target`, clamped inside it). On failure, mounts already
 * made stay: the caller unmounts with unmountAll.
 */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  for (const m of mounts) {
    const dest = m.target === undefined || m.target === '' ? target : path.join(target, path.posix.normalize(`/${m.target}`));
    mountOne(m, dest);
  }
}

function mountOne(m: Mount, target: string): void {
  const { flags, propagation, data } = parseMountOptions(m.options);
  const isBind = (flags & C.MS_BIND) !== 0;
  // A bind mount's type is only a label; the kernel wants none.
  mount(m.source, target, isBind ? '' : m.type, flags, data.length > 0 ? data.join(',') : null);
  // MS_RDONLY is ignored when creating a bind mount; it takes a remount of the new mount.
  if (isBind && (flags & C.MS_RDONLY) !== 0) {
    mount('', target, '', (flags | C.MS_REMOUNT) >>> 0, null);
  }
  for (const change of propagation) mount('', target, '', change, null);
}

const UNMOUNT_ATTEMPTS = 50;

/**
 * Unmounts everything stacked on `target` until it is no longer a mount point. A briefly busy
 * mount (a process still leaving it) is retried, then detached.
 */
export async function unmountAll(target: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      umount2(target, attempt < UNMOUNT_ATTEMPTS ? 0 : C.MNT_DETACH);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return; // not (or no longer) a mount point
      if (code !== 'EBUSY') throw err;
      await sleep(10);
    }
  }
}

/** The mounts as a read-only view: bind mounts get 'ro', overlays lose their upper layer's writability. */
export function readonlyMounts(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.type === 'overlay') return { ...m, options: readonlyOverlayOptions(m.options) };
    return { ...m, options: [...m.options.filter((o) => o !== 'rw'), 'ro'] };
  });
}

/**
 * Mounts `mounts` read-only on a fresh temporary directory, runs fn on it, and always unmounts
 * and removes the directory, whether fn succeeds or throws.
 */
export async function withTempMount<T>(mounts: readonly Mount[], fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-mount-'));
  try {
    await mountAll(readonlyMounts(mounts), dir);
    return await fn(dir);
  } finally {
    await unmountAll(dir);
    await rmdir(dir);
  }
}

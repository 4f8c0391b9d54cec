import { close, constants as fsc, openSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fsmount, fsmountConstants as A, mount, mountConstants as C, umount2 } from '../native/addon.js';
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
    await mountOne(m, dest);
  }
}

async function mountOne(m: Mount, target: string): Promise<void> {
  const { flags, propagation, data } = parseMountOptions(m.options);
  const isBind = (flags & C.MS_BIND) !== 0;
  const joined = data.join(',');
  if (m.type === 'overlay' && Buffer.byteLength(joined) > MAX_MOUNT_DATA) {
    mountLongOverlay(m.source, target, data, flags);
  } else {
    // A bind mount's type is only a label; the kernel wants none.
    await mount(m.source, target, isBind ? '' : m.type, flags, data.length > 0 ? joined : null);
  }
  // MS_RDONLY is ignored when creating a bind mount; it takes a remount of the new mount.
  if (isBind && (flags & C.MS_RDONLY) !== 0) {
    await mount('', target, '', (flags | C.MS_REMOUNT) >>> 0, null);
  }
  for (const change of propagation) await mount('', target, '', change, null);
}

// mount(2) copies at most one page of data, NUL included.
const MAX_MOUNT_DATA = 4095;

// Mount flags that fsmount takes as mount attributes; the others have no meaning for overlay.
const MOUNT_ATTRS: ReadonlyArray<readonly [msFlag: number, attr: number]> = [
  [C.MS_RDONLY, A.MOUNT_ATTR_RDONLY],
  [C.MS_NOSUID, A.MOUNT_ATTR_NOSUID],
  [C.MS_NODEV, A.MOUNT_ATTR_NODEV],
  [C.MS_NOEXEC, A.MOUNT_ATTR_NOEXEC],
  [C.MS_NOATIME, A.MOUNT_ATTR_NOATIME],
  [C.MS_NODIRATIME, A.MOUNT_ATTR_NODIRATIME],
];

/**
 * An overlay whose options exceed a page (deep images): containerd shortens the paths by
 * chdir-ing into a common parent, which would move the whole daemon's cwd; instead each lowerdir
 * goes to the kernel on its own ("lowerdir+", Linux 6.8+).
 */
function mountLongOverlay(source: string, target: string, data: readonly string[], flags: number): void {
  const params = data.flatMap((option) =>
    option.startsWith('lowerdir=')
      ? option.slice('lowerdir='.length).split(':').map((dir) => `lowerdir+=${dir}`)
      : [option],
  );
  const attrs = MOUNT_ATTRS.reduce((acc, [msFlag, attr]) => ((flags & msFlag) !== 0 ? acc | attr : acc), 0);
  fsmount('overlay', source, target, params, attrs);
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

/** Detached mounts whose final release (closing their pin) is still running. */
const releasing = new Set<Promise<void>>();

/**
 * Detaches everything stacked on `target` and releases the mounts on a libuv worker thread.
 * Unmounting an overlay makes the kernel sync its whole upper filesystem, the host's root here:
 * 1–5 ms on the event loop for every task deleted. With an fd pinning the mount,
 * umount2(MNT_DETACH) only unhooks it, and the sync runs when the fd closes, which fs.close does
 * on the threadpool. Nothing can reach a detached mount through the tree, so no write goes
 * through it meanwhile.
 */
export function detachAll(target: string): void {
  for (;;) {
    let pin: number;
    try {
      pin = openSync(target, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      umount2(target, C.MNT_DETACH);
    } catch (err) {
      close(pin, () => undefined);
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') return; // no longer a mount point
      throw err;
    }
    const released = new Promise<void>((resolve) => close(pin, () => resolve()));
    releasing.add(released);
    void released.then(() => releasing.delete(released));
  }
}

/**
 * Resolves once every mount detached so far is released: before the same upper directory is
 * mounted again, so two overlays never hold it at once.
 */
export async function detachedReleased(): Promise<void> {
  await Promise.all([...releasing]);
}

import { createHash } from 'node:crypto';
import { rmdir } from 'node:fs/promises';
import { ctr } from './ctr.js';
import { mountsUnder } from './cleanup.js';
import { run } from './exec.js';
import { scratchDir } from './scratch.js';

/**
 * The OCI chain ID of a layer stack (image-spec "ChainID"): the key under which an unpacked
 * image's top snapshot is committed. chain(L0) = diffID(L0); chain(L0..n) =
 * sha256(chain(L0..n-1) + " " + diffID(Ln)).
 */
export function chainId(diffIds: readonly string[]): string {
  const [first, ...rest] = diffIds;
  if (first === undefined) throw new Error('chainId of no layers');
  return rest.reduce((chain, d) => `sha256:${createHash('sha256').update(`${chain} ${d}`).digest('hex')}`, first);
}

export interface MountedImage {
  /** Where the image's read-only root filesystem is mounted. */
  dir: string;
  /** Unmounts through ctr (which removes the snapshot and its lease), then the mount point. */
  unmount(): Promise<void>;
}

export interface MountImageOptions {
  namespace?: string;
  snapshotter?: string;
  /** e.g. "linux/arm64"; ctr defaults to linux/amd64. */
  platform?: string;
}

/**
 * Mounts the unpacked root filesystem of image `ref` read-only with `ctr images mount`: ctr takes
 * a lease, asks the daemon for a view of the image's top snapshot and mounts it itself, so the
 * view cannot be garbage-collected while mounted.
 */
export async function mountImage(address: string, ref: string, opts: MountImageOptions = {}): Promise<MountedImage> {
  const dir = await scratchDir('mnt-');
  const common = ['--snapshotter', opts.snapshotter ?? 'overlayfs'];
  const platform = opts.platform ? ['--platform', opts.platform] : [];
  const ns = { namespace: opts.namespace };
  const unmount = async (): Promise<void> => {
    const r = await ctr(address, ['images', 'unmount', ...common, '--rm', dir], ns);
    if ((await mountsUnder(dir)).length > 0) await run('umount', ['-l', dir]);
    await rmdir(dir); // never recursive: if the unmount failed, this must not reach the snapshot
    if (r.code !== 0) throw new Error(`ctr images unmount ${dir} failed: ${r.stderr}`);
  };
  const r = await ctr(address, ['images', 'mount', ...common, ...platform, ref, dir], ns);
  if (r.code !== 0) {
    await unmount().catch(() => undefined);
    throw new Error(`ctr images mount ${ref} failed: ${r.stderr}${r.stdout}`);
  }
  return { dir, unmount };
}

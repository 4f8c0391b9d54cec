import { randomBytes } from 'node:crypto';
import type { Api } from './client.js';
import { CliError, isAlreadyExists, unlessNotFound } from './errors.js';
import type { ImageConfig, ManifestJson } from './image.js';
import { DEFAULT_SNAPSHOTTER, type Descriptor, type Mount } from './types.js';

export interface Unpackable {
  manifest: ManifestJson;
  config: ImageConfig;
  chainIds: string[];
}

async function snapshotExists(api: Api, key: string): Promise<boolean> {
  return (await unlessNotFound(() => api.unary('snapshots', 'Stat', { snapshotter: DEFAULT_SNAPSHOTTER, key }))) !== undefined;
}

async function setLabel(api: Api, digest: string, key: string, value: string, lease: string): Promise<void> {
  await api.unary('content', 'Update', { info: { digest, labels: { [key]: value } }, update_mask: { paths: [`labels.${key}`] } }, { lease });
}

/** One layer onto its parent chain, through Diff/Apply into a snapshot committed as its chain ID. */
async function applyLayer(api: Api, layer: Descriptor, diffId: string, chainId: string, parent: string, lease: string): Promise<void> {
  const key = `extract-${process.hrtime.bigint()}-${randomBytes(2).toString('hex')} ${chainId}`;
  const { mounts = [] } = await api.unary<{ mounts?: Mount[] }>(
    'snapshots',
    'Prepare',
    { snapshotter: DEFAULT_SNAPSHOTTER, key, parent },
    { lease },
  );
  try {
    const { applied } = await api.unary<{ applied?: Descriptor }>('diff', 'Apply', { diff: layer, mounts }, { lease });
    if (applied?.digest !== diffId) throw new CliError(`layer ${layer.digest}: wrong diff ID ${applied?.digest ?? '(none)'}, the image config says ${diffId}`);
    await api.unary('snapshots', 'Commit', { snapshotter: DEFAULT_SNAPSHOTTER, name: chainId, key }, { lease });
  } catch (err) {
    await api.unary('snapshots', 'Remove', { snapshotter: DEFAULT_SNAPSHOTTER, key }, { lease }).catch(() => undefined);
    // Someone else committed the same chain meanwhile: their snapshot is as good as ours.
    if (!isAlreadyExists(err)) throw err;
  }
  await setLabel(api, layer.digest, 'containerd.io/uncompressed', diffId, lease);
}

/**
 * Makes sure the image's layers exist as snapshots, doing what ctr's client-side unpack does
 * (api.md §2.2 steps 10-16) for the layers that are missing, and labels the config so GC keeps
 * the top snapshot as long as the image.
 */
export async function ensureUnpacked(api: Api, image: Unpackable, lease: string): Promise<void> {
  const top = image.chainIds[image.chainIds.length - 1];
  if (!top || (await snapshotExists(api, top))) return;
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  for (const [i, chainId] of image.chainIds.entries()) {
    if (await snapshotExists(api, chainId)) continue;
    const layer = image.manifest.layers[i];
    const diffId = diffIds[i];
    if (!layer || !diffId) throw new CliError(`image has no layer ${i}`);
    await applyLayer(api, { media_type: layer.mediaType, digest: layer.digest, size: layer.size }, diffId, chainId, image.chainIds[i - 1] ?? '', lease);
  }
  await setLabel(api, image.manifest.config.digest, `containerd.io/gc.ref.snapshot.${DEFAULT_SNAPSHOTTER}`, top, lease);
}

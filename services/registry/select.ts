import { BerthError } from '../errors.js';
import { isManifest, type Descriptor, type ImageIndex } from './manifest.js';
import { formatPlatform, platformRank, type Platform } from './platform.js';

/**
 * The manifests of an index a pull fetches: every image manifest with `all`, else for each
 * wanted platform the best-fitting one (an exact match before an older arm variant; the first
 * listed on ties, as containerd orders them). Attestation manifests (platform unknown/unknown)
 * never match a real platform.
 */
export function selectManifests(index: ImageIndex, wanted: readonly Platform[], all: boolean): Descriptor[] {
  const manifests = index.manifests.filter((m) => isManifest(m.mediaType));
  if (all) return manifests;
  const picked: Descriptor[] = [];
  for (const want of wanted) {
    let best: { desc: Descriptor; rank: number } | undefined;
    for (const desc of manifests) {
      const rank = desc.platform ? platformRank(want, desc.platform) : undefined;
      if (rank !== undefined && (best === undefined || rank < best.rank)) best = { desc, rank };
    }
    if (!best) {
      const available = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
      throw new BerthError('NOT_FOUND', `no manifest for platform ${formatPlatform(want)}; the index has: ${available || 'none'}`);
    }
    if (!picked.includes(best.desc)) picked.push(best.desc);
  }
  return picked;
}

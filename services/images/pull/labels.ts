import { createHash } from 'node:crypto';
import { hostWithoutPort, type Reference } from '../../registry/reference.js';

/** The labels containerd's pull leaves on content and how it names snapshots. */
export const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed';
export const EXPIRE_LABEL = 'containerd.io/gc.expire';
const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot';

export function sourceLabel(ref: Reference): Record<string, string> {
  return { [`containerd.io/distribution.source.${hostWithoutPort(ref.domain)}`]: ref.path };
}

export function indexChildLabels(manifests: readonly string[]): Record<string, string> {
  return Object.fromEntries(manifests.map((d, i) => [`${GC_REF_CONTENT}.m.${i}`, d]));
}

export function manifestChildLabels(config: string, layers: readonly string[]): Record<string, string> {
  return { [`${GC_REF_CONTENT}.config`]: config, ...Object.fromEntries(layers.map((d, i) => [`${GC_REF_CONTENT}.l.${i}`, d])) };
}

export function snapshotRefLabel(snapshotter: string, chainId: string): Record<string, string> {
  return { [`${GC_REF_SNAPSHOT}.${snapshotter}`]: chainId };
}

/** OCI image-spec ChainIDs, one per layer: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diff : `sha256:${createHash('sha256').update(`${prev} ${diff}`).digest('hex')}`);
  }
  return out;
}

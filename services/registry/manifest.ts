import { createHash } from 'node:crypto';
import { BerthError } from '../errors.js';
import { validateDigest } from '../validate.js';
import type { Platform } from './platform.js';

/** OCI image-spec and Docker schema 2 documents: what a pull reads to find its blobs. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** What we ask the registry for, best first; schema 1 is deliberately absent (deprecated, unsigned). */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

export function isIndex(mediaType: string): boolean {
  return mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList;
}

export function isManifest(mediaType: string): boolean {
  return mediaType === MEDIA.ociManifest || mediaType === MEDIA.dockerManifest;
}

export interface ImageIndex {
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageConfig {
  diffIds: string[];
  platform: Platform;
}

/** Manifests and configs are read into memory; anything bigger than this is not one. */
export const MANIFEST_LIMIT = 4 << 20;

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function malformed(what: string, why: string): BerthError {
  return new BerthError('FAILED_PRECONDITION', `${what}: ${why}`);
}

function parseJson(what: string, data: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw malformed(what, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Every digest is validated here, before any of them can name a file or a row. */
function descriptor(what: string, value: unknown): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null) throw malformed(what, 'descriptor is not an object');
  if (typeof d.mediaType !== 'string' || !d.mediaType) throw malformed(what, 'descriptor without mediaType');
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw malformed(what, `descriptor size ${String(d.size)}`);
  try {
    validateDigest(String(d.digest));
  } catch (err) {
    throw malformed(what, err instanceof Error ? err.message : String(err));
  }
  // The content store hashes with sha256 only; a sha512 blob could never be verified.
  if (!String(d.digest).startsWith('sha256:')) throw malformed(what, `digest ${String(d.digest)}: only sha256 content is supported`);
  const out: Descriptor = { mediaType: d.mediaType, digest: String(d.digest), size: d.size };
  const p = d.platform as Partial<Platform> | undefined;
  if (p && typeof p.os === 'string' && typeof p.architecture === 'string') {
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  if (d.annotations && typeof d.annotations === 'object') out.annotations = d.annotations;
  return out;
}

/** The document's own media type, falling back to what the registry said it is. */
function mediaTypeOf(doc: Record<string, unknown>, served: string): string {
  return typeof doc.mediaType === 'string' && doc.mediaType ? doc.mediaType : served;
}

export function parseIndex(what: string, data: Buffer, served: string): ImageIndex {
  const doc = parseJson(what, data);
  if (!Array.isArray(doc.manifests)) throw malformed(what, 'index without a manifests list');
  return { mediaType: mediaTypeOf(doc, served), manifests: doc.manifests.map((m) => descriptor(what, m)) };
}

export function parseManifest(what: string, data: Buffer, served: string): ImageManifest {
  const doc = parseJson(what, data);
  if (doc.schemaVersion === 1) throw malformed(what, 'Docker schema 1 manifests are not supported');
  if (!Array.isArray(doc.layers)) throw malformed(what, 'manifest without a layers list');
  return { mediaType: mediaTypeOf(doc, served), config: descriptor(what, doc.config), layers: doc.layers.map((l) => descriptor(what, l)) };
}

export function parseConfig(what: string, data: Buffer): ImageConfig {
  const doc = parseJson(what, data);
  const rootfs = doc.rootfs as { diff_ids?: unknown } | undefined;
  const diffIds = rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw malformed(what, 'config without rootfs.diff_ids');
  for (const d of diffIds) {
    try {
      validateDigest(String(d));
    } catch (err) {
      throw malformed(what, `diff_id ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const os = typeof doc.os === 'string' ? doc.os : 'linux';
  const architecture = typeof doc.architecture === 'string' ? doc.architecture : '';
  const variant = typeof doc.variant === 'string' ? doc.variant : undefined;
  return { diffIds: diffIds.map(String), platform: { os, architecture, ...(variant ? { variant } : {}) } };
}

/** Verifies content against its descriptor: the only way bytes from the network are trusted. */
export function verify(what: string, data: Buffer, want: Pick<Descriptor, 'digest' | 'size'>): void {
  if (data.length !== want.size) throw malformed(what, `size ${data.length} does not match the descriptor's ${want.size}`);
  const got = sha256(data);
  if (got !== want.digest) throw malformed(what, `digest ${got} does not match the expected ${want.digest}`);
}

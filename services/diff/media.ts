import { createGunzip } from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import { invalidArgument } from '../errors.js';
import { zstdDecompressor } from './zstd.js';

export type Compression = 'none' | 'gzip' | 'zstd';

// The layer media types containerd's Diff service accepts (images.DiffCompression), with the
// compression each one declares.
const LAYER_MEDIA_TYPES: ReadonlyMap<string, Compression> = new Map([
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar', 'none'],
] as const);

/** Throws INVALID_ARGUMENT unless `mediaType` is a layer type we can apply. */
export function declaredCompression(mediaType: string): Compression {
  const compression = LAYER_MEDIA_TYPES.get(mediaType);
  if (compression === undefined) throw invalidArgument(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return compression;
}

/**
 * The compression a blob actually uses, from its first bytes (at least 4). Like containerd we
 * trust the bytes over the media type, since registries and tools mislabel layers.
 */
export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export function decompressor(compression: Compression): Transform {
  switch (compression) {
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024 });
    case 'zstd':
      return zstdDecompressor();
    case 'none':
      return new PassThrough();
  }
}

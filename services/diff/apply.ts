import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, invalidArgument } from '../errors.js';
import { Digester } from './digester.js';
import { declaredCompression, decompressor, detectCompression } from './media.js';
import { LayerWriter, type WhiteoutMode } from './layer-writer.js';
import { extractInto } from './extract.js';
import { feedWritable } from './feed.js';

export interface ApplyLayerOptions {
  /** Path of the layer blob, compressed or plain. */
  blob: string;
  mediaType: string;
  /** Directory to apply into: an overlay upperdir ('overlay') or a full tree ('delete'). */
  target: string;
  whiteouts: WhiteoutMode;
  /**
   * With whiteouts 'overlay': the lowerdirs under target, topmost first. Directories the layer
   * creates only as parents copy their metadata from there.
   */
  parents?: readonly string[];
  signal?: AbortSignal;
}

export interface AppliedLayer {
  /** The diffID: sha256 of the uncompressed tar. */
  digest: string;
  /** Uncompressed bytes. */
  size: number;
}

const READ_CHUNK = 1 << 20;

/** Applies an image layer blob to a directory; see ApplyLayerOptions. */
export async function applyLayer(opts: ApplyLayerOptions): Promise<AppliedLayer> {
  declaredCompression(opts.mediaType);
  const root = await realpath(opts.target);
  if (!(await stat(root)).isDirectory()) throw invalidArgument(`apply target ${opts.target} is not a directory`);
  const compression = await detectCompression(opts.blob);
  const digester = new Digester();
  const writer = new LayerWriter(root, opts.whiteouts, opts.parents ?? []);
  const extract = tar.extract();
  extractInto(extract, writer);
  const source = createReadStream(opts.blob, { highWaterMark: READ_CHUNK });
  try {
    await pipeline(
      source,
      decompressor(compression),
      digester,
      (tarStream: AsyncIterable<Buffer>) => feedWritable(tarStream, extract),
      opts.signal === undefined ? {} : { signal: opts.signal },
    );
    writer.finish();
  } catch (err) {
    if (opts.signal?.aborted === true) throw new BerthError('CANCELLED', `apply of ${opts.blob} aborted`);
    throw err;
  } finally {
    writer.close();
    // A destroyed read stream closes its fd asynchronously; the caller may remove the blob next.
    if (!source.closed) await new Promise<void>((resolve) => source.once('close', () => resolve()));
  }
  return { digest: digester.digest(), size: digester.size };
}

import { realpath, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, invalidArgument } from '../errors.js';
import type { AppliedLayer, ApplyLayerOptions } from './apply.js';
import { Digester } from './digester.js';
import { extractInto } from './extract.js';
import { feedWritable } from './feed.js';
import { LayerWriter } from './layer-writer.js';
import { declaredCompression, decompressor, type Compression } from './media.js';

/**
 * applyLayer for a blob that is still arriving (a pull applies layers while they download): the
 * same decompress → digest → tar extract chain as apply.ts, fed from an async byte source, with
 * the compression detected from the first bytes as detectCompression does for a file.
 */
export interface ApplyStreamOptions extends Omit<ApplyLayerOptions, 'blob'> {
  source: AsyncIterable<Buffer>;
  /** For error messages: the layer's digest. */
  name: string;
}

const MAGIC_BYTES = 4;

function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Reads until the magic bytes are known, then replays everything read so far. */
async function sniff(source: AsyncIterable<Buffer>): Promise<{ compression: Compression; stream: AsyncIterable<Buffer> }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < MAGIC_BYTES) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    head.push(next.value);
    size += next.value.length;
  }
  const first = Buffer.concat(head);
  async function* replay(): AsyncIterable<Buffer> {
    if (first.length > 0) yield first;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { compression: compressionOf(first), stream: replay() };
}

export async function applyLayerStream(opts: ApplyStreamOptions): Promise<AppliedLayer> {
  declaredCompression(opts.mediaType);
  const root = await realpath(opts.target);
  if (!(await stat(root)).isDirectory()) throw invalidArgument(`apply target ${opts.target} is not a directory`);
  const { compression, stream } = await sniff(opts.source);
  const digester = new Digester();
  const writer = new LayerWriter(root, opts.whiteouts, opts.parents ?? []);
  const extract = tar.extract();
  extractInto(extract, writer);
  try {
    await pipeline(
      Readable.from(stream, { objectMode: false }),
      decompressor(compression),
      digester,
      (tarStream: AsyncIterable<Buffer>) => feedWritable(tarStream, extract),
      opts.signal === undefined ? {} : { signal: opts.signal },
    );
    writer.finish();
  } catch (err) {
    if (opts.signal?.aborted === true) throw new BerthError('CANCELLED', `apply of ${opts.name} aborted`);
    throw err;
  } finally {
    writer.close();
  }
  return { digest: digester.digest(), size: digester.size };
}

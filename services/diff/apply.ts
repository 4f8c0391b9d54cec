import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, invalidArgument } from '../errors.js';
import { Digester } from './digester.js';
import { type Compression, declaredCompression, decompressor } from './media.js';
import { fileCompression, sniffCompression, type Sniffed } from './sniff.js';
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

/** applyLayer for bytes that are still arriving, such as a layer being downloaded. */
export interface ApplyLayerSourceOptions extends Omit<ApplyLayerOptions, 'blob'> {
  source: AsyncIterable<Buffer>;
  /** Names the layer in errors (its digest, say). */
  name: string;
}

const READ_CHUNK = 1 << 20;

/** Applies an image layer blob to a directory; see ApplyLayerOptions. */
export async function applyLayer(opts: ApplyLayerOptions): Promise<AppliedLayer> {
  const root = await checkRequest(opts);
  const compression = await fileCompression(opts.blob);
  const file = createReadStream(opts.blob, { highWaterMark: READ_CHUNK });
  try {
    return await applyStream(file, compression, root, { ...opts, name: opts.blob });
  } finally {
    // The pipeline destroys the stream on failure, but its fd closes asynchronously: the caller
    // may remove the blob next, and no fd may outlive the call.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
  }
}

/** Applies an image layer from a byte source (compressed or plain) to a directory. */
export async function applyLayerSource(opts: ApplyLayerSourceOptions): Promise<AppliedLayer> {
  const root = await checkRequest(opts);
  const sniffing = sniffCompression(opts.source);
  let sniffed: Sniffed;
  try {
    sniffed = await untilAborted(sniffing, opts);
  } catch (err) {
    // Aborted while sniffing: the source may yet deliver its first bytes, and must then be let go.
    sniffing.then((s) => s.release()).catch(() => undefined);
    throw err;
  }
  return applyStream(Readable.from(sniffed.stream, { objectMode: false }), sniffed.compression, root, opts);
}

/** Validates media type and target; returns the target's real path. */
async function checkRequest(opts: Pick<ApplyLayerOptions, 'mediaType' | 'target'>): Promise<string> {
  declaredCompression(opts.mediaType);
  const root = await realpath(opts.target);
  if (!(await stat(root)).isDirectory()) throw invalidArgument(`apply target ${opts.target} is not a directory`);
  return root;
}

type StreamOptions = Omit<ApplyLayerSourceOptions, 'source'>;

async function applyStream(source: Readable, compression: Compression, root: string, opts: StreamOptions): Promise<AppliedLayer> {
  const digester = new Digester();
  const writer = new LayerWriter(root, opts.whiteouts, opts.parents ?? []);
  const extract = tar.extract();
  extractInto(extract, writer);
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
    if (opts.signal?.aborted === true) throw cancelled(opts.name);
    throw corruptLayer(err, opts.name);
  } finally {
    writer.close();
  }
  return { digest: digester.digest(), size: digester.size };
}

/**
 * A layer whose bytes do not decompress or parse is bad input, not a daemon fault: it gets
 * INVALID_ARGUMENT naming the layer. Everything else (ENOSPC, EIO, our own errors) passes as is.
 */
function corruptLayer(err: unknown, name: string): unknown {
  const e = err as { code?: unknown; message?: unknown };
  const zlib = typeof e.code === 'string' && e.code.startsWith('Z_');
  const tarFormat = typeof e.message === 'string' && /tar header|unexpected end of data|invalid (tar|header|pax)/i.test(e.message);
  if (err instanceof BerthError || (!zlib && !tarFormat)) return err;
  return invalidArgument(`layer ${name} is not a valid tar stream for its media type: ${String(e.message)}`);
}

// Before the pipeline takes over the signal: a source that stalls before its first bytes.
function untilAborted<T>(work: Promise<T>, opts: StreamOptions): Promise<T> {
  const signal = opts.signal;
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelled(opts.name));
    // Even when aborted already: `work` then fails too (its source is being torn down), and
    // that failure must be handled here rather than surface as an unhandled rejection.
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const cancelled = (name: string): BerthError => new BerthError('CANCELLED', `apply of ${name} aborted`);

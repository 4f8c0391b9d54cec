import { open } from 'node:fs/promises';
import { type Compression, compressionOf } from './media.js';

// gzip needs 2 bytes to be recognised, zstd 4.
const MAGIC_BYTES = 4;

export interface Sniffed {
  compression: Compression;
  /** The whole source again, the bytes already read included. */
  stream: AsyncIterable<Buffer>;
  /** Lets go of the source (closing a file it reads) when `stream` will never be read. */
  release(): Promise<void>;
}

/** Reads a byte source until its compression is known. */
export async function sniffCompression(source: AsyncIterable<Buffer>): Promise<Sniffed> {
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
  let started = false;
  async function* replay(): AsyncGenerator<Buffer> {
    started = true;
    try {
      if (first.length > 0) yield first;
      if (ended) return;
      for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
    } finally {
      // Stopped early (abort, a corrupt layer): release the source, closing a file it reads.
      if (!ended) await iterator.return?.();
    }
  }
  const release = async (): Promise<void> => {
    // Once started, the replay's own finally lets go of the source.
    if (!started && !ended) await iterator.return?.();
  };
  return { compression: compressionOf(first), stream: replay(), release };
}

/** The compression of a blob file, from its first bytes. */
export async function fileCompression(file: string): Promise<Compression> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(MAGIC_BYTES), 0, MAGIC_BYTES, 0);
    return compressionOf(buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

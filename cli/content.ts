import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Api, CallOptions } from './client.js';
import { isAlreadyExists } from './errors.js';

/** Reads a whole blob; for manifests and configs, which are small. */
export async function readBlob(api: Api, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const msg of api.stream<{ data?: Buffer }>('content', 'Read', { digest })) {
    if (msg.data) chunks.push(msg.data);
  }
  return Buffer.concat(chunks);
}

export async function readJsonBlob<T>(api: Api, digest: string): Promise<T> {
  return JSON.parse((await readBlob(api, digest)).toString('utf8')) as T;
}

/** The data of a blob in order, for streaming big layers into an archive. */
export async function* blobChunks(api: Api, digest: string): AsyncGenerator<Buffer> {
  for await (const msg of api.stream<{ data?: Buffer }>('content', 'Read', { digest })) {
    if (msg.data?.length) yield msg.data;
  }
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface BlobSource {
  digest: string;
  size: number;
  /** Chunks of at most 1 MiB, as ctr writes them (api.md §2.2). */
  chunks(): AsyncIterable<Buffer>;
}

const CHUNK = 1024 * 1024;

/** A blob held in memory as a BlobSource. */
export function bufferSource(data: Buffer): BlobSource {
  return {
    digest: sha256(data),
    size: data.length,
    async *chunks() {
      for (let off = 0; off < data.length; off += CHUNK) yield data.subarray(off, off + CHUNK);
    },
  };
}

/** A file-backed blob; the stream is opened only when the blob is actually written. */
export function streamSource(digest: string, size: number, open: () => Readable): BlobSource {
  return {
    digest,
    size,
    async *chunks() {
      for await (const chunk of open()) yield chunk as Buffer;
    },
  };
}

/**
 * Writes a blob through Content/Write (the bidi protocol of api.md §2.2: STAT, WRITEs, COMMIT,
 * each answered). A blob the store already has answers the first STAT with ALREADY_EXISTS,
 * which is success here. Labels travel with the COMMIT.
 */
export async function writeBlob(api: Api, ref: string, blob: BlobSource, labels: Record<string, string>, opts: CallOptions): Promise<void> {
  const call = api.duplex('content', 'Write', opts);
  const replies = call[Symbol.asyncIterator]();
  const exchange = async (msg: object): Promise<{ offset?: number }> => {
    call.write(msg as Record<string, unknown>);
    const next = await replies.next();
    if (next.done) throw new Error(`content write ${ref}: the daemon closed the stream early`);
    return next.value as { offset?: number };
  };
  try {
    const status = await exchange({ action: 'STAT', ref, total: blob.size, expected: blob.digest });
    let offset = status.offset ?? 0;
    // A resumed ingest keeps its bytes; skip what the daemon already holds.
    let seen = 0;
    for await (const chunk of blob.chunks()) {
      const start = seen;
      seen += chunk.length;
      if (seen <= offset) continue;
      const part = start < offset ? chunk.subarray(offset - start) : chunk;
      await exchange({ action: 'WRITE', offset, data: part });
      offset += part.length;
    }
    await exchange({ action: 'COMMIT', total: blob.size, expected: blob.digest, offset, labels });
    call.end();
    // Drain the stream so the call ends cleanly (containerd repeats the commit reply).
    while (!(await replies.next()).done);
  } catch (err) {
    call.cancel();
    if (isAlreadyExists(err)) return;
    throw err;
  }
}

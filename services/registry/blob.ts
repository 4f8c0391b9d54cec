import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../errors.js';
import { isTransient, type RegistryClient } from './client.js';
import type { Descriptor } from './manifest.js';
import { NetworkError } from './transport.js';

/** Where a blob's bytes go; `offset` is how many it already holds (a resumed ingest holds some). */
export interface BlobSink {
  readonly offset: number;
  write(chunk: Buffer): Promise<void>;
}

const MAX_BACKOFF_MS = 10_000;

/**
 * Downloads `desc` into `sink` from its current offset. A connection that breaks or stalls is
 * resumed with a Range request from the bytes already held; the attempt budget only counts
 * failures that made no progress, so a slow but moving download is never abandoned. The digest
 * is the sink's to verify (the content store does, at commit).
 */
export async function downloadBlob(client: RegistryClient, desc: Descriptor, sink: BlobSink): Promise<void> {
  const { attempts, backoffMs, signal } = client.opts;
  let failures = 0;
  while (sink.offset < desc.size) {
    const start = sink.offset;
    try {
      await copy(client, desc, sink);
    } catch (err) {
      const progressed = sink.offset > start;
      failures = progressed ? 1 : failures + 1;
      if (!isTransient(err) || failures >= attempts || signal?.aborted) throw err;
      if (!progressed) await sleep(Math.min(backoffMs * 2 ** (failures - 1), MAX_BACKOFF_MS), undefined, signal ? { signal } : {});
    }
  }
}

async function copy(client: RegistryClient, desc: Descriptor, sink: BlobSink): Promise<void> {
  const body = await client.openBlob(desc, sink.offset);
  try {
    for await (const chunk of body) {
      if (sink.offset + chunk.length > desc.size) {
        throw new BerthError('FAILED_PRECONDITION', `blob ${desc.digest}: the registry sent more than the ${desc.size} bytes its descriptor says`);
      }
      await sink.write(chunk);
    }
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new NetworkError(`blob ${desc.digest}: connection broke at byte ${sink.offset} of ${desc.size} (${err instanceof Error ? err.message : String(err)})`, 'ECONNRESET');
  }
  if (sink.offset < desc.size) {
    throw new NetworkError(`blob ${desc.digest}: the connection ended at byte ${sink.offset} of ${desc.size}`, 'ESHORT');
  }
}

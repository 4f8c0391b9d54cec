import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../errors.js';
import { isTransient, type RegistryClient } from './client.js';
import type { Descriptor } from './manifest.js';
import { NetworkError } from './transport.js';

/**
 * Where a blob's bytes go; `offset` is how many it already holds (a resumed ingest holds some).
 * Like a Writable: write() returns false when the sink wants the source paused until drained().
 */
export interface BlobSink {
  readonly offset: number;
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
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

/**
 * One response body into the sink. The body flows ('data' events) rather than being iterated:
 * a paused socket is read one chunk per event-loop turn, and turns are scarce while layers
 * unpack; flowing, libuv reads all that is there. The sink's backpressure pauses it.
 */
async function copy(client: RegistryClient, desc: Descriptor, sink: BlobSink): Promise<void> {
  const { body, skip } = await client.openBlob(desc, sink.offset);
  let toSkip = skip;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => {
      body.destroy();
      if (err instanceof BerthError) reject(err);
      else reject(new NetworkError(`blob ${desc.digest}: connection broke at byte ${sink.offset} of ${desc.size} (${err instanceof Error ? err.message : String(err)})`, 'ECONNRESET'));
    };
    body.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (toSkip > 0) {
        const n = Math.min(toSkip, data.length);
        toSkip -= n;
        data = data.subarray(n);
        if (data.length === 0) return;
      }
      if (sink.offset + data.length > desc.size) {
        fail(new BerthError('FAILED_PRECONDITION', `blob ${desc.digest}: the registry sent more than the ${desc.size} bytes its descriptor says`));
        return;
      }
      try {
        if (!sink.write(data)) {
          body.pause();
          sink.drained().then(() => body.resume(), fail);
        }
      } catch (err) {
        fail(err);
      }
    });
    body.once('end', () => resolve());
    body.once('error', fail);
    // A connection closed before the end of a body without Content-Length ends no other way.
    body.once('close', () => (body.complete ? resolve() : fail(new Error('connection closed'))));
  });
  if (sink.offset < desc.size) {
    throw new NetworkError(`blob ${desc.digest}: the connection ended at byte ${sink.offset} of ${desc.size}`, 'ESHORT');
  }
}

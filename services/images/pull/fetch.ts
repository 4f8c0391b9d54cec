import { createReadStream, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, isBerthError } from '../../errors.js';
import type { ContentService, ContentWriter } from '../../content/service.js';
import type { LeaseService } from '../../leases/service.js';
import { downloadBlob } from '../../registry/blob.js';
import { sha256, type Descriptor } from '../../registry/manifest.js';
import type { PullContext } from './context.js';
import { GrowingFile } from './follow.js';
import { IngestSink } from './ingest-sink.js';
import type { Inflight } from './inflight.js';
import { sourceLabel } from './labels.js';
import type { Limiter } from './limit.js';

/** A layer being fetched into the content store by this pull or by a concurrent one. */
export interface LayerFetch {
  /** Resolves once the blob is committed (size and digest verified). */
  readonly done: Promise<void>;
  /** This pull runs the download (not another pull, not already stored). */
  readonly owned: boolean;
  /** The blob's bytes: followed while downloading for the first caller, else read after done. */
  source(): Promise<AsyncIterable<Buffer>>;
  close(): Promise<void>;
}

/** ctr's ingest refs, so ctr's progress display and `ctr content active` show our pulls too. */
const ingestRef = (kind: string, digest: string): string => `${kind}-${digest}`;
const PROGRESS_STEP = 1 << 20;
const LOCKED_RETRIES = 100;
const LOCKED_BACKOFF_MS = 50;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export class ContentFetcher {
  constructor(
    private readonly content: ContentService,
    private readonly leases: LeaseService,
    private readonly inflight: Inflight,
    private readonly limiter: Limiter,
  ) {}

  /** Stores a verified manifest, index or config (or adds our labels if the namespace has it). */
  async storeSmall(ctx: PullContext, kind: string, desc: Descriptor, bytes: Buffer, labels: Record<string, string>): Promise<void> {
    const writer = this.adoptShared(ctx, desc, labels) ? undefined : await this.openWriter(ctx, ingestRef(kind, desc.digest), desc);
    if (!writer) {
      this.addLabels(ctx, desc.digest, labels);
      return;
    }
    try {
      await writer.ingest.write(0, bytes);
      await commitOrShared(writer, desc, { ...labels, ...sourceLabel(ctx.ref) });
    } finally {
      await writer.release();
    }
  }

  /**
   * A manifest or config: from the blob store when any namespace has it (a re-pull or a shared
   * base fetches nothing), else from the registry. Verified either way.
   */
  async readSmall(ctx: PullContext, desc: Descriptor): Promise<Buffer> {
    const local = await readFile(this.content.blobs.blobPath(desc.digest)).catch(() => undefined);
    if (local !== undefined && local.length === desc.size && sha256(local) === desc.digest) return local;
    return ctx.client.fetchSmall(desc);
  }

  fetchLayer(ctx: PullContext, desc: Descriptor, follow: boolean): LayerFetch {
    const { namespace } = ctx;
    const fromBlob = (): AsyncIterable<Buffer> => createReadStream(this.content.blobPath(namespace, desc.digest), { highWaterMark: 1 << 20 });
    if (this.adoptShared(ctx, desc)) {
      this.addLabels(ctx, desc.digest, {});
      ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset: desc.size, total: desc.size, status: 'exists' });
      return { done: Promise.resolve(), owned: false, source: () => Promise.resolve(fromBlob()), close: () => Promise.resolve() };
    }
    ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset: 0, total: desc.size, status: 'waiting' });
    const file = deferred<GrowingFile | undefined>();
    const key = `${namespace}\0${desc.digest}`;
    const start = (onFile: ((f: GrowingFile | undefined) => void) | undefined): ReturnType<Inflight['run']> =>
      this.inflight.run(key, () => this.limiter.run(() => this.download(ctx, desc, onFile)));
    const first = start(follow ? file.resolve : undefined);
    const shared = first.shared;
    // The other pull may be cancelled or fail for its own reasons: then we fetch it ourselves.
    const done = (shared ? first.done.catch(() => start(undefined).done) : first.done).then(() => {
      // Another pull (maybe from another repository) committed it: add our source repository.
      if (shared) this.addLabels(ctx, desc.digest, {});
      ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset: desc.size, total: desc.size, status: 'downloaded' });
    });
    if (shared || !follow) file.resolve(undefined);
    // A failed download resolves `file` too, so source() falls through to `done` and its error.
    done.catch(() => file.resolve(undefined));
    let followed = false;
    return {
      done,
      owned: !shared,
      source: async () => {
        const growing = await file.promise;
        if (growing && !followed) {
          followed = true;
          return growing.chunks();
        }
        await done;
        return fromBlob();
      },
      close: async () => (await file.promise)?.close(),
    };
  }

  private async download(ctx: PullContext, desc: Descriptor, onFile: ((f: GrowingFile | undefined) => void) | undefined): Promise<void> {
    const ref = ingestRef('layer', desc.digest);
    let writer: ContentWriter | undefined;
    let file: GrowingFile | undefined;
    try {
      writer = await this.openWriter(ctx, ref, desc);
      if (writer && onFile) file = await GrowingFile.open(join(this.content.blobs.ingestPath(ctx.namespace, ref), 'data'), writer.ingest.offset);
    } catch (err) {
      await writer?.release();
      throw err;
    } finally {
      onFile?.(file);
    }
    if (!writer) return;
    const w = writer;
    let reported = w.ingest.offset;
    const report = (offset: number): void => ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset, total: desc.size, status: 'downloading' });
    const sink = new IngestSink(w.ingest, (offset) => {
      file?.grew(offset);
      if (offset - reported >= PROGRESS_STEP) report((reported = offset));
    });
    report(reported);
    try {
      await downloadBlob(ctx.client, desc, sink);
      await sink.flush();
      await this.commitVerified(ctx, w, ref, desc);
      file?.end();
    } catch (err) {
      file?.fail(err instanceof Error ? err : new Error(String(err)));
      // What arrived stays in the ingest: the next pull resumes after it.
      await sink.flush().catch(() => undefined);
      throw err;
    } finally {
      await w.release();
    }
  }

  /** The digest is checked before the commit so that a registry serving wrong bytes gets named. */
  private async commitVerified(ctx: PullContext, writer: ContentWriter, ref: string, desc: Descriptor): Promise<void> {
    const got = writer.ingest.digest();
    if (got !== desc.digest) {
      await writer.release();
      // The bytes can never become this blob; keeping them would make every retry resume into them.
      await this.content.abort(ctx.namespace, ref).catch(() => undefined);
      throw new BerthError(
        'FAILED_PRECONDITION',
        `blob ${desc.digest} from ${ctx.ref.domain}/${ctx.ref.path}: the registry sent ${desc.size} bytes that hash to ${got}; refusing them, nothing was stored`,
      );
    }
    await commitOrShared(writer, desc, sourceLabel(ctx.ref));
  }

  /**
   * True when the namespace has the blob (now). Content another namespace already holds is shared, as with containerd's default "shared"
   * content policy: the verified blob on disk gets a row in this namespace, nothing is fetched.
   * beginCommit keeps GC from sweeping the blob between the check and the row.
   */
  private adoptShared(ctx: PullContext, desc: Descriptor, labels: Record<string, string> = {}): boolean {
    // Before anything else: whichever pull commits the blob, ours keeps it alive until we finish.
    this.leases.addResource(ctx.namespace, ctx.lease, { type: 'content', id: desc.digest });
    if (this.content.has(ctx.namespace, desc.digest)) return true;
    // A writer between its rename and its row: let it finish; our writer will then skip.
    if (this.content.blobs.isCommitting(desc.digest)) return false;
    const done = this.content.blobs.beginCommit(desc.digest);
    try {
      let size: number;
      try {
        size = statSync(this.content.blobs.blobPath(desc.digest)).size;
      } catch {
        return false;
      }
      if (size !== desc.size) return false;
      try {
        this.content.record(ctx.namespace, desc.digest, size, { ...labels, ...sourceLabel(ctx.ref) }, ctx.lease);
      } catch (err) {
        if (!isBerthError(err, 'ALREADY_EXISTS')) throw err;
      }
      return true;
    } finally {
      done();
    }
  }

  /**
   * Merges our labels into content the namespace has; the distribution source label lists every
   * repository the blob came from, sorted and comma-separated, as containerd keeps it.
   */
  private addLabels(ctx: PullContext, digest: string, labels: Record<string, string>): void {
    const [[key, repo] = ['', '']] = Object.entries(sourceLabel(ctx.ref));
    const current = this.content.info(ctx.namespace, digest).labels[key];
    const repos = new Set((current ?? '').split(',').filter(Boolean));
    repos.add(repo);
    const all = { ...labels, [key]: [...repos].sort().join(',') };
    this.content.update(ctx.namespace, digest, all, Object.keys(all).map((k) => `labels.${k}`));
  }

  /**
   * An ingest writer for `ref`, or undefined when the namespace has the blob already (then our
   * lease holds it). A ref another writer holds (a concurrent ctr pull) is retried briefly.
   */
  private async openWriter(ctx: PullContext, ref: string, desc: Descriptor): Promise<ContentWriter | undefined> {
    this.leases.addResource(ctx.namespace, ctx.lease, { type: 'content', id: desc.digest });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.content.writer(ctx.namespace, ref, desc.size, desc.digest, ctx.lease);
      } catch (err) {
        if (isBerthError(err, 'ALREADY_EXISTS')) return undefined;
        if (!isBerthError(err, 'UNAVAILABLE') || attempt >= LOCKED_RETRIES || ctx.signal.aborted) throw err;
        await sleep(LOCKED_BACKOFF_MS);
      }
    }
  }
}

/** A row another writer (a concurrent ctr) made between our rename and ours is the same blob. */
async function commitOrShared(writer: ContentWriter, desc: Descriptor, labels: Record<string, string>): Promise<void> {
  try {
    await writer.commit(desc.size, desc.digest, labels);
  } catch (err) {
    if (!isBerthError(err, 'ALREADY_EXISTS')) throw err;
  }
}

import { alreadyExists, BerthError, invalidArgument, notFound, unavailable } from '../errors.js';
import { compileFilters, fieldsOf } from '../filters/filter.js';
import { applyLabelMask, checkMaskPaths } from '../labels.js';
import { insertNew, parseLabels, type Metadata } from '../metadata/db.js';
import { ensureNamespace } from '../namespaces/service.js';
import { addLeaseResource, type GcTrigger } from '../leases/service.js';
import { validateDigest, validateKey, validateLabels } from '../validate.js';
import { BlobStore, SMALL_BLOB, type Ingest, type IngestStatus } from './store.js';

export interface ContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  digest: string;
  size: number;
  labels: string;
  created_at: number;
  updated_at: number;
}

const toInfo = (row: Row): ContentInfo => ({
  digest: row.digest,
  size: row.size,
  labels: parseLabels(row.labels),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** An open ingest held by one writer; the ref stays locked until release(). */
export interface ContentWriter {
  readonly ingest: Ingest;
  commit(size: number, expected: string, labels: Record<string, string>): Promise<string>;
  release(): Promise<void>;
}

/** Content metadata per namespace, over the shared blob store. */
export class ContentService {
  constructor(
    private readonly meta: Metadata,
    readonly blobs: BlobStore,
    private readonly gc: GcTrigger,
  ) {}

  info(namespace: string, digest: string): ContentInfo {
    validateDigest(digest);
    const row = this.meta.db
      .prepare('SELECT digest, size, labels, created_at, updated_at FROM content WHERE namespace = ? AND digest = ?')
      .get(namespace, digest) as Row | undefined;
    if (!row) throw notFound(`content digest ${digest}`);
    return toInfo(row);
  }

  has(namespace: string, digest: string): boolean {
    return Boolean(this.meta.db.prepare('SELECT 1 FROM content WHERE namespace = ? AND digest = ?').get(namespace, digest));
  }

  list(namespace: string, filters?: readonly string[]): ContentInfo[] {
    const match = compileFilters(filters);
    const rows = this.meta.db
      .prepare('SELECT digest, size, labels, created_at, updated_at FROM content WHERE namespace = ? ORDER BY digest')
      .all(namespace) as Row[];
    return rows.map(toInfo).filter((i) => match(fieldsOf({ digest: i.digest, size: String(i.size) }, i.labels)));
  }

  update(namespace: string, digest: string, labels: Record<string, string>, paths?: readonly string[]): ContentInfo {
    validateDigest(digest);
    checkMaskPaths(paths, []);
    return this.meta.transaction((tx) => {
      const current = this.info(namespace, digest);
      const next = applyLabelMask(current.labels, labels, paths);
      const now = Date.now();
      tx.db
        .prepare('UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?')
        .run(JSON.stringify(next), now, namespace, digest);
      return { ...current, labels: next, updatedAt: now };
    });
  }

  async delete(namespace: string, digest: string): Promise<void> {
    validateDigest(digest);
    this.meta.transaction((tx) => {
      const res = tx.db.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?').run(namespace, digest);
      if (res.changes === 0) throw notFound(`content digest ${digest}`);
      tx.emit({ namespace, topic: '/content/delete', typeName: 'containerd.events.ContentDelete', event: { digest } });
    });
    await this.gc.schedule(false, true);
  }

  /** A byte range of a blob this namespace holds; size 0 reads to the end. */
  read(namespace: string, digest: string, offset = 0, size = 0): AsyncIterable<Buffer> {
    const info = this.info(namespace, digest);
    if (offset < 0 || size < 0) throw invalidArgument('read offset and size must not be negative');
    // containerd's code for this case; clients tell it apart from a malformed request.
    if (offset > info.size) throw new BerthError('OUT_OF_RANGE', `read offset ${offset} is past the end of ${digest} (${info.size} bytes)`);
    const end = size > 0 ? Math.min(offset + size, info.size) : info.size;
    if (end <= offset) return (async function* empty() {})();
    if (info.size <= SMALL_BLOB) return once(this.blobs.readSmall(digest).subarray(offset, end));
    return this.blobs.reader(digest, offset, end - 1);
  }

  /** Path of a blob this namespace holds, for in-process readers such as Diff.Apply. */
  blobPath(namespace: string, digest: string): string {
    this.info(namespace, digest);
    return this.blobs.blobPath(digest);
  }

  async status(namespace: string, ref: string): Promise<IngestStatus> {
    validateKey('ingest ref', ref);
    const status = await this.blobs.ingestStatus(namespace, ref);
    if (!status) throw notFound(`ingest ref "${ref}"`);
    return status;
  }

  async listStatuses(namespace: string, filters?: readonly string[]): Promise<IngestStatus[]> {
    const match = compileFilters(filters);
    const all = await this.blobs.listIngests(namespace);
    return all.filter((s) => match(fieldsOf({ ref: s.ref, expected: s.expected }, {})));
  }

  async abort(namespace: string, ref: string): Promise<void> {
    validateKey('ingest ref', ref);
    if (this.blobs.holder(namespace, ref)) throw unavailable(`ref "${ref}" is locked by an active writer; retry later`);
    await this.blobs.abort(namespace, ref);
  }

  /**
   * Opens a writer for ref. A digest this namespace already holds is refused with ALREADY_EXISTS,
   * which clients read as "skip it"; a ref held by another writer is UNAVAILABLE ("retry").
   */
  async writer(namespace: string, ref: string, total: number, expected: string, lease?: string): Promise<ContentWriter> {
    validateKey('ingest ref', ref);
    if (expected) {
      validateDigest(expected);
      if (this.has(namespace, expected)) {
        // As containerd does: the caller's lease takes the blob it is told to skip, so a collection
        // before the caller references it (Images.Create) cannot take it away.
        if (lease) this.meta.transaction((tx) => addLeaseResource(tx, namespace, lease, { type: 'content', id: expected }));
        throw alreadyExists(`content ${expected}`);
      }
    }
    // As containerd's Writer does: an unknown lease fails now, not after the whole blob is written.
    if (lease && !this.meta.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(namespace, lease)) {
      throw notFound(`lease ${lease}`);
    }
    const ingest = await this.blobs.openIngest(namespace, ref, total, expected);
    const release = (): Promise<void> => ingest.close();
    return {
      ingest,
      release,
      commit: async (size, wantDigest, labels) => {
        if (wantDigest) validateDigest(wantDigest);
        const clean = validateLabels(labels);
        try {
          const { digest, done } = await ingest.commit(size, wantDigest);
          try {
            this.record(namespace, digest, ingest.offset, clean, lease);
          } finally {
            done();
          }
          return digest;
        } finally {
          await release();
        }
      },
    };
  }

  /** Records a blob that is already on disk in this namespace (commit, or a pull's own writer). */
  record(namespace: string, digest: string, size: number, labels: Record<string, string>, lease?: string): void {
    try {
      this.meta.transaction((tx) => {
        ensureNamespace(tx, namespace);
        const now = Date.now();
        const stmt = tx.db.prepare('INSERT INTO content (namespace, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
        if (!insertNew(stmt, namespace, digest, size, JSON.stringify(labels), now, now)) throw alreadyExists(`content ${digest}`);
        addLeaseResource(tx, namespace, lease, { type: 'content', id: digest });
      });
    } catch (err) {
      // The blob is on disk without this row (a lease deleted meanwhile): if no namespace records
      // it, it is an orphan for the collector.
      void this.gc.schedule(false, true);
      throw err;
    }
  }
}

async function* once(chunk: Buffer): AsyncIterable<Buffer> {
  yield chunk;
}

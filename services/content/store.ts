import { createHash, type Hash } from 'node:crypto';
import { constants, createReadStream, readFileSync, rmSync, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { failedPrecondition, notFound, unavailable, BerthError } from '../errors.js';
import { parseDigest, type ParsedDigest } from '../validate.js';

/**
 * Blobs on disk, shared by all namespaces: `blobs/<alg>/<hex>`, read-only once committed. An
 * ingest lives in `ingest/<sha256(namespace, ref)>/` as `data` plus `status.json`; it becomes a
 * blob only by an atomic rename after its size and digest are verified, so a crash leaves either
 * a resumable ingest or a complete blob, never a partial one.
 */
export interface IngestStatus {
  namespace: string;
  ref: string;
  offset: number;
  total: number;
  expected: string;
  startedAt: number;
  updatedAt: number;
}

interface IngestRecord {
  namespace: string;
  ref: string;
  total: number;
  expected: string;
  startedAt: number;
}

/**
 * Blobs up to this size (manifests, indexes, configs) are read whole and kept in memory: clients
 * re-read them on every `ctr run`, and a stream costs an open, reads and a close on the
 * threadpool each time. Blobs never change once committed, so a cached copy is exact.
 */
export const SMALL_BLOB = 64 << 10;
const SMALL_CACHE_BYTES = 4 << 20;

export class BlobStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  /** Blobs renamed into place whose metadata row is not written yet: GC must not sweep them. */
  private readonly committing = new Set<string>();
  /** Ingest dirs held by a writer (openIngest until its Ingest closes) or by the collector. */
  private readonly claimed = new Map<string, 'writer' | 'collector'>();
  /** Small blobs by digest, least recently used first. */
  private readonly small = new Map<string, Buffer>();
  private smallBytes = 0;

  constructor(root: string) {
    this.blobsDir = join(root, 'blobs');
    this.ingestDir = join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(join(this.blobsDir, 'sha256'), { recursive: true, mode: 0o700 });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.blobsDir, algorithm, hex);
  }

  isCommitting(digest: string): boolean {
    return this.committing.has(digest);
  }

  beginCommit(digest: string): () => void {
    this.committing.add(digest);
    return () => this.committing.delete(digest);
  }

  async exists(digest: string): Promise<boolean> {
    try {
      await stat(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  async size(digest: string): Promise<number> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      throw notFound(`content ${digest}`);
    }
  }

  reader(digest: string, start: number, end?: number): ReadStream {
    return createReadStream(this.blobPath(digest), { start, end, highWaterMark: 1 << 20 });
  }

  /** The whole of a blob of at most SMALL_BLOB bytes, from memory when it was read before. */
  readSmall(digest: string): Buffer {
    const hit = this.small.get(digest);
    if (hit) {
      this.small.delete(digest);
      this.small.set(digest, hit);
      return hit;
    }
    const data = readFileSync(this.blobPath(digest));
    if (data.length > SMALL_BLOB) return data;
    this.small.set(digest, data);
    this.smallBytes += data.length;
    for (const [old, buf] of this.small) {
      if (this.smallBytes <= SMALL_CACHE_BYTES) break;
      this.forgetSmall(old, buf);
    }
    return data;
  }

  private forgetSmall(digest: string, buf = this.small.get(digest)): void {
    if (!buf) return;
    this.small.delete(digest);
    this.smallBytes -= buf.length;
  }

  async remove(digest: string): Promise<void> {
    this.forgetSmall(digest);
    await rm(this.blobPath(digest), { force: true });
  }

  /** Synchronous, for the collector's check-then-remove that no commit may interleave. */
  removeSync(digest: string): void {
    this.forgetSmall(digest);
    rmSync(this.blobPath(digest), { force: true });
  }

  /** Every committed blob's digest, for garbage collection's sweep. */
  async listBlobs(): Promise<string[]> {
    const algorithms = await readdir(this.blobsDir).catch(() => [] as string[]);
    const out: string[] = [];
    for (const algorithm of algorithms) {
      for (const hex of await readdir(join(this.blobsDir, algorithm)).catch(() => [] as string[])) {
        // Not ours (an editor's temp file, an unknown algorithm): skipped, as containerd's Walk does.
        if (isDigest(`${algorithm}:${hex}`)) out.push(`${algorithm}:${hex}`);
      }
    }
    return out;
  }

  ingestPath(namespace: string, ref: string): string {
    return join(this.ingestDir, createHash('sha256').update(`${namespace}\0${ref}`).digest('hex'));
  }

  async ingestStatus(namespace: string, ref: string): Promise<IngestStatus | undefined> {
    return readIngest(this.ingestPath(namespace, ref));
  }

  async listIngests(namespace: string): Promise<IngestStatus[]> {
    const names = await readdir(this.ingestDir).catch(() => [] as string[]);
    const all = await Promise.all(names.map((n) => readIngest(join(this.ingestDir, n))));
    return all.filter((s): s is IngestStatus => s !== undefined && s.namespace === namespace);
  }

  async abort(namespace: string, ref: string): Promise<void> {
    const dir = this.ingestPath(namespace, ref);
    if (!(await readIngest(dir))) throw notFound(`ingest ref "${ref}"`);
    await rm(dir, { recursive: true, force: true });
  }

  /** Opens (or resumes) the ingest for ref; the caller holds the ref's lock. */
  async openIngest(namespace: string, ref: string, total: number, expected: string): Promise<Ingest> {
    const dir = this.ingestPath(namespace, ref);
    const holder = this.claimed.get(dir);
    if (holder === 'writer') throw unavailable(`ref "${ref}" is locked by another writer; retry later`);
    if (holder === 'collector') throw unavailable(`ingest ref "${ref}" is being garbage collected; retry`);
    this.claimed.set(dir, 'writer');
    try {
      return await this.openClaimed(dir, namespace, ref, total, expected);
    } catch (err) {
      this.unclaim(dir);
      throw err;
    }
  }

  /**
   * Ingests that no writer holds and whose bytes last changed before `before` (ms since the
   * epoch); one without a readable status counts by its directory's time. Each is claimed:
   * removeClaimed or unclaim must follow.
   */
  async claimIdleIngests(before: number): Promise<Array<{ dir: string; namespace?: string; ref?: string }>> {
    const names = await readdir(this.ingestDir).catch(() => [] as string[]);
    const idle: Array<{ dir: string; namespace?: string; ref?: string }> = [];
    for (const name of names) {
      const dir = join(this.ingestDir, name);
      const status = await readIngest(dir);
      const updatedAt = status?.updatedAt ?? (await stat(dir).catch(() => undefined))?.mtimeMs;
      if (updatedAt === undefined || updatedAt >= before || this.claimed.has(dir)) continue;
      this.claimed.set(dir, 'collector');
      idle.push(status ? { dir, namespace: status.namespace, ref: status.ref } : { dir });
    }
    return idle;
  }

  async removeClaimed(dir: string): Promise<void> {
    try {
      await rm(dir, { recursive: true, force: true });
    } finally {
      this.unclaim(dir);
    }
  }

  /** Who holds ref's ingest, if anyone. */
  holder(namespace: string, ref: string): 'writer' | 'collector' | undefined {
    return this.claimed.get(this.ingestPath(namespace, ref));
  }

  unclaim(dir: string): void {
    this.claimed.delete(dir);
  }

  private async openClaimed(dir: string, namespace: string, ref: string, total: number, expected: string): Promise<Ingest> {
    const existing = await readIngest(dir);
    const resumed = existing && !(expected && existing.expected && existing.expected !== expected);
    if (!resumed) {
      // A different blob under the same ref, or bytes without a readable status (a torn write):
      // start over rather than mix two blobs' bytes.
      await rm(dir, { recursive: true, force: true });
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const record: IngestRecord = {
      namespace,
      ref,
      total: total || (resumed ? existing.total : 0),
      expected: expected || (resumed ? existing.expected : ''),
      startedAt: resumed ? existing.startedAt : Date.now(),
    };
    // Written aside and renamed, so that a crash never leaves a torn status behind.
    await writeFile(join(dir, 'status.json.tmp'), JSON.stringify(record));
    await rename(join(dir, 'status.json.tmp'), join(dir, 'status.json'));
    const file = await open(join(dir, 'data'), constants.O_RDWR | constants.O_CREAT, 0o600);
    const ingest = new Ingest(this, dir, record, file);
    await ingest.rehash();
    return ingest;
  }
}

function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

async function readIngest(dir: string): Promise<IngestStatus | undefined> {
  try {
    const record = JSON.parse(await readFile(join(dir, 'status.json'), 'utf8')) as IngestRecord;
    const data = await stat(join(dir, 'data'));
    return { ...record, offset: data.size, updatedAt: data.mtimeMs };
  } catch {
    return undefined;
  }
}

export class Ingest {
  /** The expected digest's algorithm (sha256 when none is known), so a sha512 blob can verify. */
  private algorithm: ParsedDigest['algorithm'];
  private hash: Hash;
  offset = 0;
  updatedAt = Date.now();
  private closed = false;

  constructor(
    private readonly store: BlobStore,
    private readonly dir: string,
    readonly record: IngestRecord,
    private readonly file: FileHandle,
  ) {
    this.algorithm = record.expected ? parseDigest(record.expected).algorithm : 'sha256';
    this.hash = createHash(this.algorithm);
  }

  get total(): number {
    return this.record.total;
  }

  set total(total: number) {
    this.record.total = total;
  }

  get expected(): string {
    return this.record.expected;
  }

  get startedAt(): number {
    return this.record.startedAt;
  }

  /** The running digest of what has been written so far. */
  digest(): string {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
  }

  /** Resuming needs the digest state of the bytes already on disk; hashes cannot be saved. */
  async rehash(): Promise<void> {
    this.hash = createHash(this.algorithm);
    const { size } = await this.file.stat();
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await this.file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      this.hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    this.offset = pos;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset !== this.offset) {
      if (offset !== 0) {
        throw new BerthError('OUT_OF_RANGE', `write offset ${offset} does not match the ingest's offset ${this.offset}; resume at ${this.offset}`);
      }
      await this.file.truncate(0);
      this.hash = createHash(this.algorithm);
      this.offset = 0;
    }
    if (data.length === 0) return;
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.file.write(data, written, data.length - written, this.offset + written);
      written += bytesWritten;
    }
    this.hash.update(data);
    this.offset += data.length;
    this.updatedAt = Date.now();
  }

  /**
   * Verifies size and digest, then renames the data into the blob store. On a mismatch the
   * ingest is discarded: its bytes can never become the blob that was promised.
   */
  async commit(size: number, expected: string): Promise<{ digest: string; done: () => void }> {
    const wantSize = size || this.record.total;
    const wantDigest = expected || this.record.expected;
    const wantAlgorithm = wantDigest ? parseDigest(wantDigest).algorithm : this.algorithm;
    if (wantAlgorithm !== this.algorithm) {
      // Only named at commit: hash what is on disk with the algorithm asked for.
      this.algorithm = wantAlgorithm;
      await this.rehash();
    }
    const digest = this.digest();
    if (wantSize && wantSize !== this.offset) {
      await this.discard();
      throw failedPrecondition(`unexpected commit size ${this.offset}, expected ${wantSize}: nothing stored`);
    }
    if (wantDigest && wantDigest !== digest) {
      await this.discard();
      throw failedPrecondition(`unexpected commit digest ${digest}, expected ${wantDigest}: nothing stored`);
    }
    await this.file.sync();
    await this.file.close();
    const blob = this.store.blobPath(digest);
    await mkdir(dirname(blob), { recursive: true, mode: 0o700 });
    const done = this.store.beginCommit(digest);
    if (!(await this.store.exists(digest))) await rename(join(this.dir, 'data'), blob);
    await rm(this.dir, { recursive: true, force: true });
    return { digest, done };
  }

  /** Releases the ingest's file and its claim; later calls do nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close().catch(() => undefined);
    this.store.unclaim(this.dir);
  }

  private async discard(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

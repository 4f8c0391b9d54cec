import type { Logger } from '../log.js';
import { parseLabels, type Metadata, type Tx } from '../metadata/db.js';
import { EXPIRE_LABEL, parseExpiry, type GcTrigger } from '../leases/service.js';
import type { BlobStore } from '../content/store.js';
import { SNAPSHOTTER, type SnapshotService } from '../snapshots/service.js';

const REF_CONTENT = 'containerd.io/gc.ref.content';
const REF_SNAPSHOT = `containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`;
const ROOT_LABEL = 'containerd.io/gc.root';

export interface GcResult {
  leases: number;
  content: number;
  snapshots: number;
  blobs: number;
  ingests: number;
}

/**
 * An ingest (a Content.Write that never committed: an interrupted pull, a client that died) is
 * kept this long after its last byte so that the writer can resume it, as long as containerd's
 * client leases last by default; one that a live lease names is kept regardless.
 */
export const INGEST_IDLE_MS = 24 * 60 * 60 * 1000;
// Ingests a day old need no look after every delete (each reads all ingest statuses). The same
// hourly pass lists the blob files too, for any a failed commit left unrecorded.
const INGEST_SWEEP_EVERY_MS = 60 * 60 * 1000;
/**
 * containerd's gc scheduler default (pause_threshold 0.02): collections nobody waits for take at
 * most 2 % of the time, so a burst of deletes (twenty `ctr run` leases ending at once) costs a
 * few collections, not one each. A caller that waits (a sync delete) is served at once.
 */
const PAUSE_THRESHOLD = 0.02;
/** However long a collection took, a background one follows a change within this. */
const MAX_PAUSE_MS = 5_000;

interface SnapshotRow {
  id: number;
  namespace: string;
  key: string;
  parent_id: number | null;
  labels: string;
}

/** Digests a label set points at, and snapshot keys, following containerd's gc.ref labels. */
function labelRefs(labels: Record<string, string>): { content: string[]; snapshots: string[] } {
  const content: string[] = [];
  const snapshots: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(REF_CONTENT)) content.push(value);
    else if (key === REF_SNAPSHOT || key.startsWith(`${REF_SNAPSHOT}/`)) snapshots.push(value);
  }
  return { content, snapshots };
}

/**
 * Mark and sweep over the metadata: roots are images, containers, unexpired leases and gc.root
 * labels; references are gc.ref labels and snapshot parents. The mark and the row deletes run in
 * one transaction, so no pull or write interleaves; files are removed after COMMIT.
 */
export class GarbageCollector implements GcTrigger {
  private running: Promise<GcResult> | undefined;
  /** A change since the current or last collection started, that nobody waits for. */
  private pending = false;
  private waiters: Array<() => void> = [];
  /** When a background collection may start (see PAUSE_THRESHOLD). */
  private notBefore = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextIngestSweep = 0;
  /**
   * Whether blob files may have lost their last content row. Listing every blob after each
   * container delete would make deletes cost O(blobs); only content deletes (and the start-up and
   * hourly passes) can leave a blob unrecorded.
   */
  private blobsDirty = false;

  constructor(
    private readonly meta: Metadata,
    private readonly blobs: BlobStore,
    private readonly snapshots: SnapshotService,
    private readonly log: Logger,
  ) {}

  schedule(wait = false, contentRemoved = false): Promise<void> {
    if (contentRemoved) this.blobsDirty = true;
    if (!wait) {
      this.pending = true;
      this.kick();
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.kick();
    return done;
  }

  /** Starts a collection now if one is due, else makes sure a timer will. */
  private kick(): void {
    if (this.running) return; // the loop looks at pending and waiters when it is done
    if (!this.pending && this.waiters.length === 0) return;
    const delay = this.waiters.length > 0 ? 0 : this.notBefore - Date.now();
    if (delay <= 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.running = this.loop();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, delay).unref();
    }
  }

  /**
   * One collection now (used at start-up and by tests). `everything` also lists the blob files
   * when no content row went since the last look.
   */
  async collect(everything = true): Promise<GcResult> {
    const { result, doomed, leasedIngests } = this.meta.transaction((tx) => this.markAndSweep(tx));
    for (const path of doomed) await this.snapshots.layout.removeAbsolute(path);
    const hourly = Date.now() >= this.nextIngestSweep;
    if (everything || this.blobsDirty || result.content > 0 || hourly) {
      this.blobsDirty = false;
      result.blobs = await this.sweepBlobs();
    }
    if (hourly) {
      this.nextIngestSweep = Date.now() + INGEST_SWEEP_EVERY_MS;
      result.ingests = await this.sweepIngests(leasedIngests);
    }
    if (result.leases + result.content + result.snapshots + result.blobs + result.ingests > 0) this.log.info('garbage collected', { ...result });
    return result;
  }

  private async loop(): Promise<GcResult> {
    let result: GcResult = { leases: 0, content: 0, snapshots: 0, blobs: 0, ingests: 0 };
    do {
      this.pending = false;
      const waiters = this.waiters;
      this.waiters = [];
      const start = performance.now();
      try {
        result = await this.collect(false);
      } catch (err) {
        this.log.error('garbage collection failed', { error: err });
      }
      const took = performance.now() - start;
      this.notBefore = Date.now() + Math.min(took * (1 / PAUSE_THRESHOLD - 1), MAX_PAUSE_MS);
      for (const resolve of waiters) resolve();
    } while (this.waiters.length > 0);
    this.running = undefined;
    this.kick();
    return result;
  }

  private markAndSweep(tx: Tx): { result: GcResult; doomed: string[]; leasedIngests: Set<string> } {
    const db = tx.db;
    const now = Date.now();
    let leases = 0;
    for (const lease of db.prepare('SELECT namespace, id, labels FROM leases').all() as { namespace: string; id: string; labels: string }[]) {
      const expire = parseLabels(lease.labels)[EXPIRE_LABEL];
      // A value that is not a time never expires, as in containerd.
      const at = expire === undefined ? undefined : parseExpiry(expire);
      if (at !== undefined && at <= now) {
        db.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?').run(lease.namespace, lease.id);
        leases++;
      }
    }

    const content = new Set<string>();
    const snapshotKeys = new Set<string>();
    const contentQueue: string[] = [];
    const snapQueue: string[] = [];
    const markContent = (ns: string, digest: string): void => {
      const k = `${ns}\0${digest}`;
      if (!content.has(k)) {
        content.add(k);
        contentQueue.push(k);
      }
    };
    const markSnapshot = (ns: string, key: string): void => {
      const k = `${ns}\0${key}`;
      if (!snapshotKeys.has(k)) {
        snapshotKeys.add(k);
        snapQueue.push(k);
      }
    };
    const markLabels = (ns: string, labels: Record<string, string>): void => {
      const refs = labelRefs(labels);
      refs.content.forEach((d) => markContent(ns, d));
      refs.snapshots.forEach((s) => markSnapshot(ns, s));
    };

    for (const img of db.prepare('SELECT namespace, digest, labels FROM images').all() as { namespace: string; digest: string; labels: string }[]) {
      markContent(img.namespace, img.digest);
      // containerd follows an image's own gc.ref labels as well as its target.
      markLabels(img.namespace, parseLabels(img.labels));
    }
    for (const c of db.prepare('SELECT namespace, snapshotter, snapshot_key, labels FROM containers').all() as {
      namespace: string;
      snapshotter: string;
      snapshot_key: string;
      labels: string;
    }[]) {
      if (c.snapshot_key && (c.snapshotter === SNAPSHOTTER || !c.snapshotter)) markSnapshot(c.namespace, c.snapshot_key);
      markLabels(c.namespace, parseLabels(c.labels));
    }
    const leasedIngests = new Set<string>();
    for (const r of db.prepare('SELECT namespace, type, resource_id FROM lease_resources').all() as {
      namespace: string;
      type: string;
      resource_id: string;
    }[]) {
      if (r.type === 'content') markContent(r.namespace, r.resource_id);
      else if (r.type === `snapshots/${SNAPSHOTTER}`) markSnapshot(r.namespace, r.resource_id);
      else if (r.type === 'ingests') leasedIngests.add(`${r.namespace}\0${r.resource_id}`);
    }
    const contentRows = db.prepare('SELECT namespace, digest, labels FROM content').all() as { namespace: string; digest: string; labels: string }[];
    const contentLabels = new Map(contentRows.map((r) => [`${r.namespace}\0${r.digest}`, parseLabels(r.labels)]));
    for (const [k, labels] of contentLabels) {
      if (labels[ROOT_LABEL] !== undefined) markContent(k.split('\0')[0] ?? '', k.split('\0')[1] ?? '');
    }
    const snapRows = db.prepare('SELECT id, namespace, key, parent_id, labels FROM snapshots WHERE snapshotter = ?').all(SNAPSHOTTER) as SnapshotRow[];
    const snapByKey = new Map(snapRows.map((r) => [`${r.namespace}\0${r.key}`, r]));
    const snapById = new Map(snapRows.map((r) => [r.id, r]));
    for (const r of snapRows) if (parseLabels(r.labels)[ROOT_LABEL] !== undefined) markSnapshot(r.namespace, r.key);

    while (contentQueue.length > 0 || snapQueue.length > 0) {
      const c = contentQueue.pop();
      if (c !== undefined) {
        const labels = contentLabels.get(c);
        if (labels) markLabels(c.split('\0')[0] ?? '', labels);
        continue;
      }
      const s = snapQueue.pop();
      const row = s === undefined ? undefined : snapByKey.get(s);
      if (!row) continue;
      markLabels(row.namespace, parseLabels(row.labels));
      const parent = row.parent_id === null ? undefined : snapById.get(row.parent_id);
      if (parent) markSnapshot(parent.namespace, parent.key);
    }

    let removedContent = 0;
    for (const r of contentRows) {
      if (content.has(`${r.namespace}\0${r.digest}`)) continue;
      db.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?').run(r.namespace, r.digest);
      tx.emit({ namespace: r.namespace, topic: '/content/delete', typeName: 'containerd.events.ContentDelete', event: { digest: r.digest } });
      removedContent++;
    }
    // Children have larger ids than their parents, so removing in descending id order never
    // removes a parent before its child.
    const doomed: string[] = [];
    for (const r of [...snapRows].sort((a, b) => b.id - a.id)) {
      if (snapshotKeys.has(`${r.namespace}\0${r.key}`)) continue;
      doomed.push(this.snapshots.removeRow(tx, r.namespace, r));
      tx.emit({ namespace: r.namespace, topic: '/snapshot/remove', typeName: 'containerd.events.SnapshotRemove', event: { key: r.key } });
    }
    return { result: { leases, content: removedContent, snapshots: doomed.length, blobs: 0, ingests: 0 }, doomed, leasedIngests };
  }

  /** Ingests idle for longer than INGEST_IDLE_MS that no live lease names. */
  private async sweepIngests(leased: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const ingest of await this.blobs.claimIdleIngests(Date.now() - INGEST_IDLE_MS)) {
      if (ingest.namespace !== undefined && leased.has(`${ingest.namespace}\0${ingest.ref ?? ''}`)) {
        this.blobs.unclaim(ingest.dir);
        continue;
      }
      await this.blobs.removeClaimed(ingest.dir);
      removed++;
    }
    return removed;
  }

  /** Blob files no namespace records, except those a writer is committing right now. */
  private async sweepBlobs(): Promise<number> {
    const onDisk = await this.blobs.listBlobs();
    const recorded = this.meta.db.prepare('SELECT 1 FROM content WHERE digest = ? LIMIT 1');
    let removed = 0;
    for (const digest of onDisk) {
      // Checked against the db as it is now and removed without yielding: a commit records its
      // digest (or starts renaming a blob into place) between these steps, never inside one.
      if (recorded.get(digest) || this.blobs.isCommitting(digest)) continue;
      this.blobs.removeSync(digest);
      removed++;
    }
    return removed;
  }
}

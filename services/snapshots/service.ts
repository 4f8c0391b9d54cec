import { join } from 'node:path';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { compileFilters, fieldsOf } from '../filters/filter.js';
import { applyLabelMask, checkMaskPaths } from '../labels.js';
import type { Logger } from '../log.js';
import { parseLabels, type Metadata, type Tx } from '../metadata/db.js';
import { ensureNamespace } from '../namespaces/service.js';
import { addLeaseResource } from '../leases/service.js';
import { validateKey, validateLabels } from '../validate.js';
import { OverlayLayout } from './overlay.js';
import type { MountSpec, SnapshotInfo, SnapshotKind, SnapshotUsage } from './types.js';

export const SNAPSHOTTER = 'overlayfs';

interface Row {
  id: number;
  key: string;
  parent_id: number | null;
  kind: SnapshotKind;
  labels: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'id, key, parent_id, kind, labels, created_at, updated_at';

/** The `overlayfs` snapshotter: rows in SQLite, directories in an OverlayLayout. */
export class SnapshotService {
  /** Retired directories still being deleted (see remove). */
  private readonly removals = new Set<Promise<void>>();

  constructor(
    private readonly meta: Metadata,
    readonly layout: OverlayLayout,
    private readonly log: Logger,
  ) {}

  checkSnapshotter(name: string | undefined): void {
    if (name && name !== SNAPSHOTTER) {
      throw invalidArgument(`snapshotter "${name}" is not available; berthd provides "${SNAPSHOTTER}"`);
    }
  }

  prepare(namespace: string, key: string, parent: string, labels: Record<string, string>, lease?: string): MountSpec[] {
    return this.create(namespace, key, parent, labels, 'active', lease);
  }

  view(namespace: string, key: string, parent: string, labels: Record<string, string>, lease?: string): MountSpec[] {
    return this.create(namespace, key, parent, labels, 'view', lease);
  }

  mounts(namespace: string, key: string): MountSpec[] {
    validateKey('snapshot key', key);
    const row = this.row(namespace, key);
    if (row.kind === 'committed') throw failedPrecondition(`snapshot ${key} is committed; mount a view or an active snapshot of it`);
    return this.layout.mounts(row.id, row.kind, this.parentIds(row));
  }

  commit(namespace: string, name: string, key: string, labels: Record<string, string>, lease?: string): void {
    validateKey('snapshot name', name);
    validateKey('snapshot key', key);
    const clean = validateLabels(labels);
    this.meta.transaction((tx) => {
      const row = this.row(namespace, key);
      if (row.kind !== 'active') throw failedPrecondition(`snapshot ${key} is ${row.kind}; only active snapshots can be committed`);
      if (this.find(namespace, name)) throw alreadyExists(`snapshot ${name}`);
      const merged = { ...parseLabels(row.labels), ...clean };
      tx.db
        .prepare("UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, updated_at = ? WHERE id = ?")
        .run(name, JSON.stringify(merged), Date.now(), row.id);
      addLeaseResource(tx, namespace, lease, { type: `snapshots/${SNAPSHOTTER}`, id: name });
      tx.emit({ namespace, topic: '/snapshot/commit', typeName: 'containerd.events.SnapshotCommit', event: { key, name } });
    });
  }

  async remove(namespace: string, key: string): Promise<void> {
    validateKey('snapshot key', key);
    const doomed = this.meta.transaction((tx) => {
      const row = this.row(namespace, key);
      const retired = this.removeRow(tx, namespace, row);
      tx.emit({ namespace, topic: '/snapshot/remove', typeName: 'containerd.events.SnapshotRemove', event: { key } });
      return retired;
    });
    // The directory left the layout (renamed) in the transaction; deleting its files, many for a
    // big container layer, is nothing the caller needs to wait for. A crash before the end leaves
    // an rm- directory, which start-up removes.
    const removal = this.layout
      .recycle(doomed)
      .catch((err: unknown) => this.log.warn('cannot remove a retired snapshot directory', { path: doomed, error: err }))
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  /** Resolves when the directories of snapshots removed so far are gone (at shutdown). */
  async removalsDone(): Promise<void> {
    await Promise.all([...this.removals]);
  }

  /** Deletes one snapshot row and retires its directory; the caller removes the returned path. */
  removeRow(tx: Tx, namespace: string, row: { id: number; key: string }): string {
    const child = tx.db.prepare('SELECT key FROM snapshots WHERE parent_id = ? LIMIT 1').get(row.id) as { key: string } | undefined;
    if (child) throw failedPrecondition(`cannot remove snapshot ${row.key}: snapshot ${child.key} depends on it`);
    tx.db.prepare('DELETE FROM snapshots WHERE id = ?').run(row.id);
    tx.db
      .prepare('DELETE FROM lease_resources WHERE namespace = ? AND type = ? AND resource_id = ?')
      .run(namespace, `snapshots/${SNAPSHOTTER}`, row.key);
    return this.layout.retire(row.id);
  }

  stat(namespace: string, key: string): SnapshotInfo {
    validateKey('snapshot key', key);
    return this.toInfo(this.row(namespace, key));
  }

  update(namespace: string, key: string, labels: Record<string, string>, paths?: readonly string[]): SnapshotInfo {
    validateKey('snapshot key', key);
    checkMaskPaths(paths, []);
    return this.meta.transaction((tx) => {
      const row = this.row(namespace, key);
      const next = applyLabelMask(parseLabels(row.labels), labels, paths);
      const now = Date.now();
      tx.db.prepare('UPDATE snapshots SET labels = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(next), now, row.id);
      return this.toInfo({ ...row, labels: JSON.stringify(next), updated_at: now });
    });
  }

  list(namespace: string, filters?: readonly string[]): SnapshotInfo[] {
    const match = compileFilters(filters);
    const rows = this.meta.db
      .prepare(`SELECT ${COLUMNS} FROM snapshots WHERE namespace = ? AND snapshotter = ? ORDER BY id`)
      .all(namespace, SNAPSHOTTER) as Row[];
    return rows
      .map((r) => this.toInfo(r))
      .filter((i) => match(fieldsOf({ name: i.name, parent: i.parent, kind: i.kind }, i.labels)));
  }

  async usage(namespace: string, key: string): Promise<SnapshotUsage> {
    validateKey('snapshot key', key);
    return this.layout.usage(this.row(namespace, key).id);
  }

  /** Removes directories that no row owns: staging and retired dirs, and ids a crash orphaned. */
  async cleanup(): Promise<number> {
    const ids = new Set((this.meta.db.prepare('SELECT id FROM snapshots').all() as { id: number }[]).map((r) => String(r.id)));
    const orphans = this.layout.listEntries().filter((name) => !ids.has(name));
    for (const name of orphans) {
      this.log.info('removing orphan snapshot directory', { name });
      await this.layout.removePath(name);
    }
    return orphans.length;
  }

  private create(
    namespace: string,
    key: string,
    parent: string,
    labels: Record<string, string>,
    kind: SnapshotKind,
    lease?: string,
  ): MountSpec[] {
    validateKey('snapshot key', key);
    if (parent) validateKey('snapshot parent', parent);
    const clean = validateLabels(labels);
    // containerd's unpackers (ctr's, CRI's, our pull's) prepare the snapshot a layer goes into
    // under an `extract-` key.
    let staging = this.layout.stage(key.startsWith('extract-'));
    try {
      return this.meta.transaction((tx) => {
        ensureNamespace(tx, namespace);
        if (this.find(namespace, key)) throw alreadyExists(`snapshot ${key}`);
        const parentRow = parent ? this.find(namespace, parent) : undefined;
        if (parent && !parentRow) throw notFound(`parent snapshot ${parent}`);
        if (parentRow && parentRow.kind !== 'committed') {
          throw invalidArgument(`parent snapshot ${parent} is ${parentRow.kind}; a parent must be committed`);
        }
        if (parentRow) this.layout.inheritOwner(staging, parentRow.id);
        const now = Date.now();
        const res = tx.db
          .prepare(
            'INSERT INTO snapshots (namespace, snapshotter, key, parent_id, kind, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(namespace, SNAPSHOTTER, key, parentRow?.id ?? null, kind, JSON.stringify(clean), now, now);
        const id = Number(res.lastInsertRowid);
        addLeaseResource(tx, namespace, lease, { type: `snapshots/${SNAPSHOTTER}`, id: key });
        tx.emit({ namespace, topic: '/snapshot/prepare', typeName: 'containerd.events.SnapshotPrepare', event: { key, parent } });
        const parents = parentRow ? [parentRow.id, ...this.parentIds(parentRow)] : [];
        const mounts = this.layout.mounts(id, kind, parents);
        // Last, so that a failure above leaves no <id> directory: a rollback also rolls back the
        // AUTOINCREMENT counter, and the next creation would reuse the id and find it taken.
        this.layout.place(staging, id);
        // Should COMMIT itself fail, the catch below removes the placed directory instead.
        staging = join(this.layout.root, String(id));
        return mounts;
      });
    } catch (err) {
      this.layout.discardStaged(staging);
      throw err;
    }
  }

  find(namespace: string, key: string): Row | undefined {
    return this.meta.db
      .prepare(`SELECT ${COLUMNS} FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?`)
      .get(namespace, SNAPSHOTTER, key) as Row | undefined;
  }

  private row(namespace: string, key: string): Row {
    const row = this.find(namespace, key);
    if (!row) throw notFound(`snapshot ${key}`);
    return row;
  }

  /** Ancestor ids, nearest first. */
  private parentIds(row: Row): number[] {
    const ids: number[] = [];
    let next = row.parent_id;
    const stmt = this.meta.db.prepare('SELECT parent_id FROM snapshots WHERE id = ?');
    while (next !== null) {
      ids.push(next);
      next = (stmt.get(next) as { parent_id: number | null } | undefined)?.parent_id ?? null;
    }
    return ids;
  }

  private toInfo(row: Row): SnapshotInfo {
    const parent = row.parent_id === null
      ? ''
      : ((this.meta.db.prepare('SELECT key FROM snapshots WHERE id = ?').get(row.parent_id) as { key: string } | undefined)?.key ?? '');
    return {
      name: row.key,
      parent,
      kind: row.kind,
      labels: parseLabels(row.labels),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

import { alreadyExists, failedPrecondition, notFound } from '../errors.js';
import { compileFilters, fieldsOf } from '../filters/filter.js';
import { applyLabelMask, checkMaskPaths } from '../labels.js';
import { insertNew, parseLabels, type Metadata, type Tx } from '../metadata/db.js';
import { validateLabels, validateNamespace } from '../validate.js';

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

interface Row {
  name: string;
  labels: string;
}

const toNamespace = (row: Row): Namespace => ({ name: row.name, labels: parseLabels(row.labels) });

/** Creates the namespace if missing: containerd does so on the first namespaced write. */
export function ensureNamespace(tx: Tx, name: string): void {
  // In-process callers reach here without the gRPC layer's check; refuse before anything commits.
  validateNamespace(name);
  const now = Date.now();
  const inserted = tx.db
    .prepare('INSERT OR IGNORE INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?)')
    .run(name, '{}', now, now);
  if (inserted.changes > 0) {
    tx.emit({ namespace: name, topic: '/namespaces/create', typeName: 'containerd.events.NamespaceCreate', event: { name, labels: {} } });
  }
}

const OWNED_TABLES = ['images', 'content', 'snapshots', 'containers', 'leases'] as const;

export class NamespaceService {
  constructor(private readonly meta: Metadata) {}

  get(name: string): Namespace {
    validateNamespace(name);
    const row = this.meta.db.prepare('SELECT name, labels FROM namespaces WHERE name = ?').get(name) as Row | undefined;
    if (!row) throw notFound(`namespace ${name}`);
    return toNamespace(row);
  }

  list(filters?: readonly string[]): Namespace[] {
    const match = compileFilters(filters);
    const rows = this.meta.db.prepare('SELECT name, labels FROM namespaces ORDER BY name').all() as Row[];
    return rows.map(toNamespace).filter((ns) => match(fieldsOf({ name: ns.name }, ns.labels)));
  }

  create(name: string, labels: Record<string, string> = {}): Namespace {
    validateNamespace(name);
    const clean = validateLabels(labels);
    return this.meta.transaction((tx) => {
      const now = Date.now();
      const stmt = tx.db.prepare('INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?)');
      if (!insertNew(stmt, name, JSON.stringify(clean), now, now)) throw alreadyExists(`namespace ${name}`);
      tx.emit({ namespace: name, topic: '/namespaces/create', typeName: 'containerd.events.NamespaceCreate', event: { name, labels: clean } });
      return { name, labels: clean };
    });
  }

  update(name: string, labels: Record<string, string>, paths?: readonly string[]): Namespace {
    validateNamespace(name);
    checkMaskPaths(paths, []);
    return this.meta.transaction((tx) => {
      const current = this.get(name);
      const next = applyLabelMask(current.labels, labels, paths);
      tx.db.prepare('UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?').run(JSON.stringify(next), Date.now(), name);
      tx.emit({ namespace: name, topic: '/namespaces/update', typeName: 'containerd.events.NamespaceUpdate', event: { name, labels: next } });
      return { name, labels: next };
    });
  }

  delete(name: string): void {
    validateNamespace(name);
    this.meta.transaction((tx) => {
      this.get(name);
      const inUse = OWNED_TABLES.filter((table) =>
        tx.db.prepare(`SELECT 1 FROM ${table} WHERE namespace = ? LIMIT 1`).get(name),
      );
      if (inUse.length > 0) {
        throw failedPrecondition(`namespace ${name} must be empty, but it still has ${inUse.join(', ')}`);
      }
      tx.db.prepare('DELETE FROM namespaces WHERE name = ?').run(name);
      tx.emit({ namespace: name, topic: '/namespaces/delete', typeName: 'containerd.events.NamespaceDelete', event: { name } });
    });
  }
}

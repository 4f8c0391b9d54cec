import { randomBytes } from 'node:crypto';
import { alreadyExists, invalidArgument, notFound } from '../errors.js';
import { compileFilters, fieldsOf } from '../filters/filter.js';
import { insertNew, parseLabels, type Metadata, type Tx } from '../metadata/db.js';
import { ensureNamespace } from '../namespaces/service.js';
import { validateLabels, validateLeaseId } from '../validate.js';

export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt: number;
}

/** A resource a lease keeps alive: `content` (digest), `snapshots/<snapshotter>` (key), `ingests` (ref). */
export interface LeaseResource {
  id: string;
  type: string;
}

export const EXPIRE_LABEL = 'containerd.io/gc.expire';

// What Go's time.Parse(time.RFC3339, …) takes; Date.parse alone also takes "12" or "Dec 1".
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Milliseconds of a gc.expire value, or undefined when it is not an RFC 3339 time. */
export function parseExpiry(value: string): number | undefined {
  if (!RFC3339_RE.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const RESOURCE_TYPE_RE = /^(content|ingests|snapshots\/[A-Za-z0-9_.-]+)$/;

interface Row {
  id: string;
  labels: string;
  created_at: number;
}

const toLease = (row: Row): Lease => ({ id: row.id, labels: parseLabels(row.labels), createdAt: row.created_at });

/** Attaches a resource to the call's lease inside the caller's transaction. */
export function addLeaseResource(tx: Tx, namespace: string, leaseId: string | undefined, resource: LeaseResource): void {
  if (!leaseId) return;
  const lease = tx.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(namespace, leaseId);
  if (!lease) throw notFound(`lease ${leaseId}`);
  tx.db
    .prepare('INSERT OR IGNORE INTO lease_resources (namespace, lease_id, type, resource_id) VALUES (?, ?, ?, ?)')
    .run(namespace, leaseId, resource.type, resource.id);
}

export interface GcTrigger {
  /**
   * Runs a collection soon; with wait, resolves when one that started after this call is done.
   * `contentRemoved` says a content row was deleted outside the collector, so blob files may now
   * be unrecorded.
   */
  schedule(wait?: boolean, contentRemoved?: boolean): Promise<void>;
}

export class LeaseService {
  constructor(
    private readonly meta: Metadata,
    private readonly gc: GcTrigger,
  ) {}

  create(namespace: string, id: string | undefined, labels: Record<string, string> = {}): Lease {
    const leaseId = id ? validateLeaseId(id) : generateLeaseId();
    const clean = validateLabels(labels);
    const expire = clean[EXPIRE_LABEL];
    if (expire !== undefined && parseExpiry(expire) === undefined) {
      throw invalidArgument(`label ${EXPIRE_LABEL}="${expire}": not an RFC 3339 time`);
    }
    return this.meta.transaction((tx) => {
      ensureNamespace(tx, namespace);
      const now = Date.now();
      const stmt = tx.db.prepare('INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)');
      if (!insertNew(stmt, namespace, leaseId, JSON.stringify(clean), now)) throw alreadyExists(`lease ${leaseId}`);
      return { id: leaseId, labels: clean, createdAt: now };
    });
  }

  async delete(namespace: string, id: string, sync = false): Promise<void> {
    validateLeaseId(id);
    this.meta.transaction((tx) => {
      const res = tx.db.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?').run(namespace, id);
      if (res.changes === 0) throw notFound(`lease ${id}`);
    });
    await this.gc.schedule(sync);
  }

  list(namespace: string, filters?: readonly string[]): Lease[] {
    const match = compileFilters(filters);
    const rows = this.meta.db
      .prepare('SELECT id, labels, created_at FROM leases WHERE namespace = ? ORDER BY created_at, id')
      .all(namespace) as Row[];
    return rows.map(toLease).filter((l) => match(fieldsOf({ id: l.id }, l.labels)));
  }

  addResource(namespace: string, id: string, resource: LeaseResource): void {
    validateLeaseId(id);
    checkResource(resource);
    this.meta.transaction((tx) => addLeaseResource(tx, namespace, id, resource));
  }

  async deleteResource(namespace: string, id: string, resource: LeaseResource): Promise<void> {
    validateLeaseId(id);
    checkResource(resource);
    this.meta.transaction((tx) => {
      if (!tx.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(namespace, id)) throw notFound(`lease ${id}`);
      tx.db
        .prepare('DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND type = ? AND resource_id = ?')
        .run(namespace, id, resource.type, resource.id);
    });
    await this.gc.schedule(false);
  }

  listResources(namespace: string, id: string): LeaseResource[] {
    validateLeaseId(id);
    if (!this.meta.db.prepare('SELECT 1 FROM leases WHERE namespace = ? AND id = ?').get(namespace, id)) throw notFound(`lease ${id}`);
    return this.meta.db
      .prepare('SELECT resource_id AS id, type FROM lease_resources WHERE namespace = ? AND lease_id = ? ORDER BY type, resource_id')
      .all(namespace, id) as LeaseResource[];
  }
}

function checkResource(resource: LeaseResource): void {
  if (!resource.id) throw invalidArgument('lease resource id must not be empty');
  if (!RESOURCE_TYPE_RE.test(resource.type)) {
    throw invalidArgument(`lease resource type "${resource.type}": use content, ingests or snapshots/<snapshotter>`);
  }
}

/** Same shape as ctr's lease IDs: nanoseconds then four random hex characters. */
function generateLeaseId(): string {
  return `${BigInt(Date.now()) * 1_000_000n}-${randomBytes(2).toString("hex")}`;
}

import { alreadyExists, invalidArgument, notFound } from '../errors.js';
import { compileFilters, type FieldGetter } from '../filters/filter.js';
import { applyLabelMask } from '../labels.js';
import { insertNew, parseLabels, type Metadata } from '../metadata/db.js';
import { ensureNamespace } from '../namespaces/service.js';
import type { GcTrigger } from '../leases/service.js';
import { decodeMessage, encodeMessage, messageType } from '../server/protos.js';
import { validateIdentifier, validateKey, validateLabels } from '../validate.js';

/** google.protobuf.Any, kept verbatim: the spec is JSON inside, runtime options protobuf. */
export interface AnyValue {
  type_url: string;
  value: Buffer;
}

export interface Container {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options?: AnyValue };
  spec?: AnyValue;
  snapshotter: string;
  snapshotKey: string;
  extensions: Record<string, AnyValue>;
  createdAt: number;
  updatedAt: number;
}

export type ContainerInput = Omit<Container, 'createdAt' | 'updatedAt'>;

interface Row {
  id: string;
  labels: string;
  image: string;
  runtime_name: string;
  runtime_options: Buffer | null;
  spec: Buffer | null;
  snapshotter: string;
  snapshot_key: string;
  extensions: string | null;
  created_at: number;
  updated_at: number;
}

const anyType = (): ReturnType<typeof messageType> => messageType('google.protobuf.Any');
const packStored = (value: AnyValue | undefined): Buffer | null => (value ? encodeMessage(anyType(), value) : null);
const unpackStored = (bytes: Buffer | null): AnyValue | undefined => {
  if (!bytes) return undefined;
  const any = decodeMessage<Partial<AnyValue>>(anyType(), bytes);
  return { type_url: any.type_url ?? '', value: any.value ?? Buffer.alloc(0) };
};

function toContainer(row: Row): Container {
  const ext = JSON.parse(row.extensions ?? '{}') as Record<string, { type_url: string; value: string }>;
  return {
    id: row.id,
    labels: parseLabels(row.labels),
    image: row.image,
    runtime: { name: row.runtime_name, options: unpackStored(row.runtime_options) },
    spec: unpackStored(row.spec),
    snapshotter: row.snapshotter,
    snapshotKey: row.snapshot_key,
    extensions: Object.fromEntries(Object.entries(ext).map(([k, v]) => [k, { type_url: v.type_url, value: Buffer.from(v.value, 'base64') }])),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const storeExtensions = (ext: Record<string, AnyValue>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(ext).map(([k, v]) => [k, { type_url: v.type_url, value: v.value.toString('base64') }])));

function containerFields(c: Container): FieldGetter {
  return (path) => {
    const [head, ...rest] = path;
    const key = rest.join('.');
    if (head === 'labels') return c.labels[key];
    if (rest.length === 0) {
      if (head === 'id') return c.id;
      if (head === 'image') return c.image;
      if (head === 'snapshotter') return c.snapshotter;
      if (head === 'snapshotkey' || head === 'snapshot_key') return c.snapshotKey;
    }
    if (head === 'runtime' && key === 'name') return c.runtime.name;
    return undefined;
  };
}

const UPDATABLE = ['image', 'spec', 'snapshotkey', 'extensions', 'labels', 'runtime'] as const;

/** Container records: metadata only; a running task is the Tasks service's business. */
export class ContainerService {
  constructor(
    private readonly meta: Metadata,
    private readonly gc: GcTrigger,
  ) {}

  get(namespace: string, id: string): Container {
    validateIdentifier('container', id);
    const row = this.meta.db.prepare('SELECT * FROM containers WHERE namespace = ? AND id = ?').get(namespace, id) as Row | undefined;
    if (!row) throw notFound(`container "${id}"`);
    return toContainer(row);
  }

  list(namespace: string, filters?: readonly string[]): Container[] {
    const match = compileFilters(filters);
    const rows = this.meta.db.prepare('SELECT * FROM containers WHERE namespace = ? ORDER BY created_at, id').all(namespace) as Row[];
    return rows.map(toContainer).filter((c) => match(containerFields(c)));
  }

  create(namespace: string, input: ContainerInput): Container {
    const c = checkContainer(input);
    return this.meta.transaction((tx) => {
      ensureNamespace(tx, namespace);
      const now = Date.now();
      const inserted = insertNew(
        tx.db.prepare(
          `INSERT INTO containers (namespace, id, labels, image, runtime_name, runtime_options, spec, snapshotter, snapshot_key, extensions, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        namespace,
        c.id,
        JSON.stringify(c.labels),
        c.image,
        c.runtime.name,
        packStored(c.runtime.options),
        packStored(c.spec),
        c.snapshotter,
        c.snapshotKey,
        storeExtensions(c.extensions),
        now,
        now,
      );
      if (!inserted) throw alreadyExists(`container "${c.id}"`);
      tx.emit({
        namespace,
        topic: '/containers/create',
        typeName: 'containerd.events.ContainerCreate',
        event: { id: c.id, image: c.image, runtime: { name: c.runtime.name, options: c.runtime.options } },
      });
      return { ...c, createdAt: now, updatedAt: now };
    });
  }

  /** Field-mask update as containerd does it; without a mask every updatable field is replaced. */
  update(namespace: string, input: ContainerInput, paths?: readonly string[]): Container {
    for (const p of paths ?? []) {
      const top = p.split('.')[0] as (typeof UPDATABLE)[number];
      if (!UPDATABLE.includes(top)) throw invalidArgument(`cannot update container field "${p}": updatable fields are ${UPDATABLE.join(', ')}`);
    }
    return this.meta.transaction((tx) => {
      const current = this.get(namespace, input.id);
      const all = !paths || paths.length === 0;
      const has = (field: string): boolean => all || (paths ?? []).some((p) => p === field || p.startsWith(`${field}.`));
      const next: Container = {
        ...current,
        labels: applyLabelMask(current.labels, input.labels, paths),
        image: has('image') ? input.image : current.image,
        spec: has('spec') ? input.spec : current.spec,
        snapshotKey: has('snapshotkey') ? input.snapshotKey : current.snapshotKey,
        runtime: has('runtime') ? input.runtime : current.runtime,
        extensions: has('extensions') ? input.extensions : current.extensions,
        updatedAt: Date.now(),
      };
      checkContainer(next);
      tx.db
        .prepare(
          `UPDATE containers SET labels = ?, image = ?, runtime_name = ?, runtime_options = ?, spec = ?, snapshot_key = ?, extensions = ?, updated_at = ?
           WHERE namespace = ? AND id = ?`,
        )
        .run(
          JSON.stringify(next.labels),
          next.image,
          next.runtime.name,
          packStored(next.runtime.options),
          packStored(next.spec),
          next.snapshotKey,
          storeExtensions(next.extensions),
          next.updatedAt,
          namespace,
          next.id,
        );
      tx.emit({
        namespace,
        topic: '/containers/update',
        typeName: 'containerd.events.ContainerUpdate',
        event: { id: next.id, image: next.image, labels: next.labels, snapshot_key: next.snapshotKey },
      });
      return next;
    });
  }

  async delete(namespace: string, id: string): Promise<void> {
    validateIdentifier('container', id);
    this.meta.transaction((tx) => {
      const res = tx.db.prepare('DELETE FROM containers WHERE namespace = ? AND id = ?').run(namespace, id);
      if (res.changes === 0) throw notFound(`container "${id}"`);
      tx.emit({ namespace, topic: '/containers/delete', typeName: 'containerd.events.ContainerDelete', event: { id } });
    });
    await this.gc.schedule(false);
  }
}

function checkContainer(c: ContainerInput): ContainerInput {
  validateIdentifier('container', c.id);
  if (!c.runtime.name) throw invalidArgument(`container "${c.id}": runtime name must be set (e.g. io.containerd.runc.v2)`);
  if (!c.spec || !c.spec.type_url) throw invalidArgument(`container "${c.id}": spec must be set`);
  if (c.snapshotKey) validateKey('snapshot key', c.snapshotKey);
  return { ...c, labels: validateLabels(c.labels) };
}

import { alreadyExists, invalidArgument, notFound } from '../errors.js';
import { compileFilters, type FieldGetter } from '../filters/filter.js';
import { applyLabelMask, checkMaskPaths } from '../labels.js';
import { insertNew, parseLabels, type Metadata } from '../metadata/db.js';
import { ensureNamespace } from '../namespaces/service.js';
import type { GcTrigger } from '../leases/service.js';
import { validateDigest, validateKey, validateLabels } from '../validate.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export interface Image {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  name: string;
  media_type: string;
  digest: string;
  size: number;
  annotations: string;
  labels: string;
  created_at: number;
  updated_at: number;
}

const toImage = (row: Row): Image => ({
  name: row.name,
  labels: parseLabels(row.labels),
  target: { mediaType: row.media_type, digest: row.digest, size: row.size, annotations: parseLabels(row.annotations) },
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

function imageFields(image: Image): FieldGetter {
  return (path) => {
    const [head, ...rest] = path;
    const key = rest.join('.');
    if (head === 'name' && rest.length === 0) return image.name;
    if (head === 'labels') return image.labels[key];
    if (head === 'target') {
      if (key === 'digest') return image.target.digest;
      if (key === 'mediatype' || key === 'media_type') return image.target.mediaType;
      if (rest[0] === 'annotations') return image.target.annotations[rest.slice(1).join('.')];
    }
    return undefined;
  };
}

function checkTarget(target: Descriptor): void {
  if (!target.mediaType) throw invalidArgument('image target media type must not be empty');
  validateDigest(target.digest);
  if (!(target.size >= 0)) throw invalidArgument('image target size must not be negative');
}

const COLUMNS = 'name, media_type, digest, size, annotations, labels, created_at, updated_at';

export class ImageService {
  constructor(
    private readonly meta: Metadata,
    private readonly gc: GcTrigger,
  ) {}

  get(namespace: string, name: string): Image {
    validateKey('image name', name);
    const row = this.meta.db
      .prepare(`SELECT ${COLUMNS} FROM images WHERE namespace = ? AND name = ?`)
      .get(namespace, name) as Row | undefined;
    if (!row) throw notFound(`image "${name}"`);
    return toImage(row);
  }

  list(namespace: string, filters?: readonly string[]): Image[] {
    const match = compileFilters(filters);
    const rows = this.meta.db.prepare(`SELECT ${COLUMNS} FROM images WHERE namespace = ? ORDER BY name`).all(namespace) as Row[];
    return rows.map(toImage).filter((image) => match(imageFields(image)));
  }

  create(namespace: string, image: Omit<Image, 'createdAt' | 'updatedAt'>): Image {
    validateKey('image name', image.name);
    checkTarget(image.target);
    const labels = validateLabels(image.labels);
    return this.meta.transaction((tx) => {
      ensureNamespace(tx, namespace);
      const now = Date.now();
      const inserted = insertNew(
        tx.db.prepare(`INSERT INTO images (namespace, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
        namespace,
        image.name,
        image.target.mediaType,
        image.target.digest,
        image.target.size,
        JSON.stringify(image.target.annotations),
        JSON.stringify(labels),
        now,
        now,
      );
      if (!inserted) throw alreadyExists(`image "${image.name}"`);
      tx.emit({ namespace, topic: '/images/create', typeName: 'containerd.services.images.v1.ImageCreate', event: { name: image.name, labels } });
      return { ...image, labels, createdAt: now, updatedAt: now };
    });
  }

  /** Without a mask, target, labels and annotations are all replaced (what ctr's re-pull sends). */
  update(namespace: string, image: Omit<Image, 'createdAt' | 'updatedAt'>, paths?: readonly string[]): Image {
    validateKey('image name', image.name);
    checkMaskPaths(paths, ['target', 'annotations']);
    return this.meta.transaction((tx) => {
      const current = this.get(namespace, image.name);
      const all = !paths || paths.length === 0;
      const target = all || paths.includes('target') ? image.target : current.target;
      if (all || paths.includes('target')) checkTarget(target);
      const labels = applyLabelMask(current.labels, image.labels, paths);
      const annotations = all || paths.includes('annotations') ? image.target.annotations : current.target.annotations;
      const now = Date.now();
      tx.db
        .prepare('UPDATE images SET media_type = ?, digest = ?, size = ?, annotations = ?, labels = ?, updated_at = ? WHERE namespace = ? AND name = ?')
        .run(target.mediaType, target.digest, target.size, JSON.stringify(annotations), JSON.stringify(labels), now, namespace, image.name);
      tx.emit({ namespace, topic: '/images/update', typeName: 'containerd.services.images.v1.ImageUpdate', event: { name: image.name, labels } });
      return { name: image.name, labels, target: { ...target, annotations }, createdAt: current.createdAt, updatedAt: now };
    });
  }

  async delete(namespace: string, name: string, sync = false): Promise<void> {
    validateKey('image name', name);
    this.meta.transaction((tx) => {
      const res = tx.db.prepare('DELETE FROM images WHERE namespace = ? AND name = ?').run(namespace, name);
      if (res.changes === 0) throw notFound(`image "${name}"`);
      tx.emit({ namespace, topic: '/images/delete', typeName: 'containerd.services.images.v1.ImageDelete', event: { name } });
    });
    await this.gc.schedule(sync);
  }
}

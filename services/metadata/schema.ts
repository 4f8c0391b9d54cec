/**
 * The metadata schema. Migrations are numbered and applied in order; PRAGMA user_version records
 * the last one applied. The whole schema, as of the last migration:
 *
 *   namespaces(name PK, labels, created_at, updated_at)
 *   content(namespace, digest, size, labels, created_at, updated_at)        PK(namespace, digest)
 *   images(namespace, name, media_type, digest, size, annotations, labels,
 *          created_at, updated_at)                                          PK(namespace, name)
 *   snapshots(id PK, namespace, snapshotter, key, parent_id → snapshots.id,
 *             kind 'view'|'active'|'committed', labels, created_at, updated_at)
 *                                                                           UNIQUE(namespace, snapshotter, key)
 *   leases(namespace, id, labels, created_at)                               PK(namespace, id)
 *   lease_resources(namespace, lease_id, type, resource_id)                 PK(all four), → leases ON DELETE CASCADE
 *   containers(namespace, id, labels, image, runtime_name, runtime_options, spec, snapshotter,
 *              snapshot_key, extensions, created_at, updated_at)           PK(namespace, id)
 *
 * Labels and annotations are JSON objects; times are milliseconds since the epoch; Any values
 * (container spec, runtime options, extensions) are stored as their protobuf bytes, verbatim.
 * Snapshot directories on disk are named by snapshots.id, so renaming a key on commit moves nothing.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE content (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, digest)
  );
  CREATE INDEX content_by_digest ON content(digest);
  CREATE TABLE images (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    annotations TEXT NOT NULL DEFAULT '{}',
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    snapshotter TEXT NOT NULL,
    key TEXT NOT NULL,
    parent_id INTEGER REFERENCES snapshots(id),
    kind TEXT NOT NULL CHECK (kind IN ('view', 'active', 'committed')),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace, snapshotter, key)
  );
  CREATE INDEX snapshots_by_parent ON snapshots(parent_id);
  CREATE TABLE leases (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id)
  );
  CREATE TABLE lease_resources (
    namespace TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (namespace, lease_id, type, resource_id),
    FOREIGN KEY (namespace, lease_id) REFERENCES leases(namespace, id) ON DELETE CASCADE
  );
  CREATE TABLE containers (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    image TEXT NOT NULL DEFAULT '',
    runtime_name TEXT NOT NULL DEFAULT '',
    runtime_options BLOB,
    spec BLOB,
    snapshotter TEXT NOT NULL DEFAULT '',
    snapshot_key TEXT NOT NULL DEFAULT '',
    extensions BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id)
  );
  `,
];

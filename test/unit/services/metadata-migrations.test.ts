import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Metadata, type PendingEvent } from '../../../services/metadata/db.js';
import { MIGRATIONS } from '../../../services/metadata/schema.js';
import { makeTempDir } from './harness.js';

let dir: string;
let dbPath: string;
const opened: Metadata[] = [];

function open(): Metadata {
  const meta = new Metadata(dbPath);
  opened.push(meta);
  return meta;
}

function userVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** File descriptors of this process open on the db file itself. */
function openHandlesTo(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

const event = (topic: string): PendingEvent => ({ namespace: 'default', topic, typeName: 'test.Event', event: {} });

beforeEach(async () => {
  dir = await makeTempDir('berth-meta-');
  dbPath = join(dir, 'metadata.db');
});

afterEach(async () => {
  for (const meta of opened.splice(0)) if (meta.db.open) meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('migrations', () => {
  it('set user_version to the number of migrations and create the schema', () => {
    const meta = open();
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    expect(meta.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const tables = (meta.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (t) => t.name,
    );
    expect(tables).toEqual(expect.arrayContaining(['containers', 'content', 'images', 'lease_resources', 'leases', 'namespaces', 'snapshots']));
    expect(meta.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(meta.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(meta.db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('reopening is idempotent and keeps the data', () => {
    const first = open();
    first.db.prepare("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES ('default', '{}', 1, 1)").run();
    first.close();
    const second = open();
    expect(second.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(second.db.prepare('SELECT name FROM namespaces').all()).toEqual([{ name: 'default' }]);
    expect(second.db.pragma('integrity_check', { simple: true })).toBe('ok');
    second.close();
    expect(userVersion(dbPath)).toBe(MIGRATIONS.length);
  });

  it('refuses a db written by a newer berthd with a clear error, and leaves it untouched', () => {
    open().close();
    const raw = new Database(dbPath);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    expect(() => open()).toThrow(
      new RegExp(`schema version ${MIGRATIONS.length + 1}, newer than this berthd \\(${MIGRATIONS.length}\\); upgrade berthd`),
    );
    expect(userVersion(dbPath)).toBe(MIGRATIONS.length + 1);
  });

  it('a refused db is not left open', () => {
    open().close();
    const raw = new Database(dbPath);
    raw.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    raw.close();
    expect(openHandlesTo(dbPath)).toBe(0);
    expect(() => new Metadata(dbPath)).toThrow(/newer than this berthd/);
    expect(openHandlesTo(dbPath)).toBe(0);
  });

  it('refuses a file that is not a SQLite database, without leaving it open', () => {
    writeFileSync(dbPath, Buffer.alloc(8192, 0x5a));
    expect(() => new Metadata(dbPath)).toThrow(/not a database/);
    expect(openHandlesTo(dbPath)).toBe(0);
  });
});

describe('transaction', () => {
  it('delivers events only after COMMIT, when other connections see the change', () => {
    const meta = open();
    const delivered: { topic: string; visible: boolean }[] = [];
    const reader = new Database(dbPath, { readonly: true });
    try {
      meta.onEvent((e) => {
        const row = reader.prepare("SELECT 1 FROM namespaces WHERE name = 'ns1'").get();
        delivered.push({ topic: e.topic, visible: row !== undefined });
      });
      const result = meta.transaction((tx) => {
        tx.db.prepare("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES ('ns1', '{}', 1, 1)").run();
        tx.emit(event('/one'));
        tx.emit(event('/two'));
        expect(delivered).toEqual([]);
        return 42;
      });
      expect(result).toBe(42);
      expect(delivered).toEqual([
        { topic: '/one', visible: true },
        { topic: '/two', visible: true },
      ]);
    } finally {
      reader.close();
    }
  });

  it('delivers nothing and rolls back when the function throws', () => {
    const meta = open();
    const delivered: string[] = [];
    meta.onEvent((e) => delivered.push(e.topic));
    expect(() =>
      meta.transaction((tx) => {
        tx.db.prepare("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES ('ns2', '{}', 1, 1)").run();
        tx.emit(event('/never'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(delivered).toEqual([]);
    expect(meta.db.prepare("SELECT 1 FROM namespaces WHERE name = 'ns2'").get()).toBeUndefined();
    expect(meta.db.inTransaction).toBe(false);
  });

  it('cascades lease resources when a lease row is deleted (foreign keys are on)', () => {
    const meta = open();
    meta.transaction((tx) => {
      tx.db.prepare("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES ('n', '{}', 1, 1)").run();
      tx.db.prepare("INSERT INTO leases (namespace, id, labels, created_at) VALUES ('n', 'l', '{}', 1)").run();
      tx.db.prepare("INSERT INTO lease_resources (namespace, lease_id, type, resource_id) VALUES ('n', 'l', 'content', 'd')").run();
    });
    meta.transaction((tx) => tx.db.prepare("DELETE FROM leases WHERE id = 'l'").run());
    expect(meta.db.prepare('SELECT COUNT(*) AS n FROM lease_resources').get()).toEqual({ n: 0 });
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { descriptor, expectBerthError, openTestRoot, recordEvents, writeBlob, type TestRoot } from './harness.js';

let t: TestRoot;

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

describe('NamespaceService', () => {
  it('creates, gets and lists namespaces', () => {
    const ns = t.services.namespaces;
    expect(ns.create('alpha', { team: 'a' })).toEqual({ name: 'alpha', labels: { team: 'a' } });
    ns.create('beta');
    expect(ns.get('alpha')).toEqual({ name: 'alpha', labels: { team: 'a' } });
    expect(ns.list().map((n) => n.name)).toEqual(['alpha', 'beta']);
    expect(ns.list(['labels.team==a']).map((n) => n.name)).toEqual(['alpha']);
    expect(ns.list(['name==beta']).map((n) => n.name)).toEqual(['beta']);
  });

  it('refuses a duplicate, an unknown and an invalid name', async () => {
    const ns = t.services.namespaces;
    ns.create('alpha');
    await expectBerthError(() => ns.create('alpha'), 'ALREADY_EXISTS', 'namespace alpha: already exists');
    await expectBerthError(() => ns.get('nope'), 'NOT_FOUND', 'namespace nope: not found');
    await expectBerthError(() => ns.create('../x'), 'INVALID_ARGUMENT', /namespace/);
    await expectBerthError(() => ns.create('ok', { '': 'v' }), 'INVALID_ARGUMENT', /label key/);
  });

  it('update with labels.<key> sets or deletes one key', () => {
    const ns = t.services.namespaces;
    ns.create('alpha', { keep: '1', drop: '2' });
    expect(ns.update('alpha', { added: 'x' }, ['labels.added']).labels).toEqual({ keep: '1', drop: '2', added: 'x' });
    expect(ns.update('alpha', {}, ['labels.drop']).labels).toEqual({ keep: '1', added: 'x' });
    expect(ns.get('alpha').labels).toEqual({ keep: '1', added: 'x' });
  });

  it('update with the labels path or no mask replaces all labels', () => {
    const ns = t.services.namespaces;
    ns.create('alpha', { a: '1', b: '2' });
    expect(ns.update('alpha', { c: '3' }, ['labels']).labels).toEqual({ c: '3' });
    expect(ns.update('alpha', { d: '4' }).labels).toEqual({ d: '4' });
    expect(ns.get('alpha').labels).toEqual({ d: '4' });
  });

  it('update refuses a mask path other than labels instead of ignoring it', async () => {
    const ns = t.services.namespaces;
    ns.create('alpha', { a: '1' });
    await expectBerthError(() => ns.update('alpha', { b: '2' }, ['name']), 'INVALID_ARGUMENT', /cannot update "name"/);
    expect(ns.get('alpha').labels).toEqual({ a: '1' });
  });

  it('update of an unknown namespace is NOT_FOUND', async () => {
    await expectBerthError(() => t.services.namespaces.update('ghost', { a: '1' }), 'NOT_FOUND');
  });

  it('deletes an empty namespace', async () => {
    const ns = t.services.namespaces;
    ns.create('alpha');
    ns.delete('alpha');
    await expectBerthError(() => ns.get('alpha'), 'NOT_FOUND');
    await expectBerthError(() => ns.delete('alpha'), 'NOT_FOUND');
  });

  it('refuses to delete a namespace that owns an image', async () => {
    const digest = await writeBlob(t.services, 'imgs', 'manifest');
    t.services.images.create('imgs', { name: 'docker.io/library/x:1', labels: {}, target: descriptor(digest) });
    await expectBerthError(() => t.services.namespaces.delete('imgs'), 'FAILED_PRECONDITION', /imgs must be empty.*images/);
    expect(t.services.namespaces.get('imgs').name).toBe('imgs');
  });

  it('refuses to delete a namespace that owns content', async () => {
    await writeBlob(t.services, 'blobs', 'data');
    await expectBerthError(() => t.services.namespaces.delete('blobs'), 'FAILED_PRECONDITION', /content/);
  });

  it('refuses to delete a namespace that owns a snapshot', async () => {
    t.services.snapshots.prepare('snaps', 'k', '', {});
    await expectBerthError(() => t.services.namespaces.delete('snaps'), 'FAILED_PRECONDITION', /snapshots/);
    await t.services.snapshots.remove('snaps', 'k');
    t.services.namespaces.delete('snaps');
    await expectBerthError(() => t.services.namespaces.get('snaps'), 'NOT_FOUND');
  });

  it('refuses to delete a namespace that owns a lease', async () => {
    t.services.leases.create('leased', 'l1');
    await expectBerthError(() => t.services.namespaces.delete('leased'), 'FAILED_PRECONDITION', /leases/);
    await t.services.leases.delete('leased', 'l1');
    t.services.namespaces.delete('leased');
  });

  it('publishes create, update and delete events after each change', async () => {
    const rec = recordEvents(t.services);
    const ns = t.services.namespaces;
    ns.create('alpha', { a: '1' });
    ns.update('alpha', { b: '2' }, ['labels.b']);
    ns.delete('alpha');
    await rec.stop();
    expect(rec.topics()).toEqual(['alpha /namespaces/create', 'alpha /namespaces/update', 'alpha /namespaces/delete']);
    expect(rec.events[0]?.event.type_url).toBe('containerd.events.NamespaceCreate');
  });

  it('publishes nothing for a refused change', async () => {
    const ns = t.services.namespaces;
    ns.create('alpha');
    const rec = recordEvents(t.services);
    await expectBerthError(() => ns.create('alpha'), 'ALREADY_EXISTS');
    await expectBerthError(() => ns.update('alpha', { '': 'x' }), 'INVALID_ARGUMENT');
    await rec.stop();
    expect(rec.events).toEqual([]);
  });

  it('a namespaced write creates its namespace and publishes /namespaces/create', async () => {
    const rec = recordEvents(t.services);
    t.services.leases.create('fresh', 'l');
    await rec.stop();
    expect(t.services.namespaces.get('fresh')).toEqual({ name: 'fresh', labels: {} });
    expect(rec.topics()).toEqual(['fresh /namespaces/create']);
  });

  it('a namespaced write with an invalid namespace fails before anything is committed', async () => {
    await expectBerthError(() => t.services.leases.create('bad ns', 'l'), 'INVALID_ARGUMENT', /namespace "bad ns"/);
    await expectBerthError(() => t.services.snapshots.prepare('../up', 'k', '', {}), 'INVALID_ARGUMENT', /namespace/);
    expect(t.services.meta.db.prepare('SELECT name FROM namespaces').all()).toEqual([]);
    expect(t.services.leases.list('bad ns')).toEqual([]);
    expect(t.services.snapshots.list('../up')).toEqual([]);
  });
});

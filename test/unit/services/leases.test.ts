import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXPIRE_LABEL } from '../../../services/leases/service.js';
import { expectBerthError, openTestRoot, type TestRoot } from './harness.js';

let t: TestRoot;
const NS = 'default';

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

describe('LeaseService', () => {
  it('creates a lease with a generated ctr-style id when none is given', () => {
    const before = Date.now();
    const lease = t.services.leases.create(NS, undefined);
    expect(lease.id).toMatch(/^\d+-[0-9a-f]{4}$/);
    expect(lease.createdAt).toBeGreaterThanOrEqual(before);
    expect(t.services.leases.create(NS, '').id).toMatch(/^\d+-[0-9a-f]{4}$/);
    expect(t.services.leases.list(NS)).toHaveLength(2);
  });

  it('creates a lease with an explicit id and labels', () => {
    const expire = new Date(Date.now() + 86_400_000).toISOString();
    const lease = t.services.leases.create(NS, '343629245-lqL_', { [EXPIRE_LABEL]: expire });
    expect(lease).toMatchObject({ id: '343629245-lqL_', labels: { [EXPIRE_LABEL]: expire } });
    expect(t.services.leases.list(NS)).toEqual([lease]);
  });

  it('refuses a duplicate id with ALREADY_EXISTS but allows it in another namespace', async () => {
    t.services.leases.create(NS, 'dup');
    await expectBerthError(() => t.services.leases.create(NS, 'dup'), 'ALREADY_EXISTS', 'lease dup: already exists');
    expect(t.services.leases.create('other', 'dup').id).toBe('dup');
  });

  it('refuses an invalid containerd.io/gc.expire with INVALID_ARGUMENT and creates nothing', async () => {
    await expectBerthError(
      () => t.services.leases.create(NS, 'bad', { [EXPIRE_LABEL]: 'tomorrow-ish' }),
      'INVALID_ARGUMENT',
      /containerd\.io\/gc\.expire="tomorrow-ish": not an RFC 3339 time/,
    );
    expect(t.services.leases.list(NS)).toEqual([]);
  });

  it.each(['12', '2026', 'Dec 1 2099', '1/2/2099', '2099-12-01', '2099-12-01 03:45:00Z', '2099-13-01T00:00:00Z'])(
    'refuses gc.expire %j, which is not RFC 3339 even if Date.parse takes it',
    async (value) => {
      await expectBerthError(() => t.services.leases.create(NS, 'l', { [EXPIRE_LABEL]: value }), 'INVALID_ARGUMENT', /not an RFC 3339 time/);
    },
  );

  it.each(['2099-12-01T03:45:00Z', '2099-12-01T03:45:00.123456789Z', '2099-12-01T03:45:00+01:00', '2099-12-01T03:45:00.5-07:00'])(
    'accepts RFC 3339 gc.expire %j',
    (value) => {
      expect(t.services.leases.create(NS, 'l', { [EXPIRE_LABEL]: value }).labels[EXPIRE_LABEL]).toBe(value);
    },
  );

  it('refuses invalid ids', async () => {
    await expectBerthError(() => t.services.leases.create(NS, 'a\u0000b'), 'INVALID_ARGUMENT', /lease id/);
  });

  it('lists with filters on id and labels', () => {
    t.services.leases.create(NS, 'l1', { purpose: 'pull' });
    t.services.leases.create(NS, 'l2', { purpose: 'mount' });
    t.services.leases.create('other', 'l3', { purpose: 'pull' });
    const ids = (filters: string[]) => t.services.leases.list(NS, filters).map((l) => l.id);
    expect(ids([])).toEqual(['l1', 'l2']);
    expect(ids(['id==l2'])).toEqual(['l2']);
    expect(ids(['labels.purpose==pull'])).toEqual(['l1']);
    expect(ids(['labels.purpose==pull', 'id==l2'])).toEqual(['l1', 'l2']);
    expect(ids(['labels.purpose~=^m'])).toEqual(['l2']);
  });

  it('adds, lists and deletes resources', async () => {
    const leases = t.services.leases;
    leases.create(NS, 'l');
    leases.addResource(NS, 'l', { type: 'content', id: 'sha256:aaa' });
    leases.addResource(NS, 'l', { type: 'snapshots/overlayfs', id: 'key 1' });
    leases.addResource(NS, 'l', { type: 'ingests', id: 'ref' });
    leases.addResource(NS, 'l', { type: 'content', id: 'sha256:aaa' });
    expect(leases.listResources(NS, 'l')).toEqual([
      { id: 'sha256:aaa', type: 'content' },
      { id: 'ref', type: 'ingests' },
      { id: 'key 1', type: 'snapshots/overlayfs' },
    ]);
    await leases.deleteResource(NS, 'l', { type: 'content', id: 'sha256:aaa' });
    expect(leases.listResources(NS, 'l').map((r) => r.type)).toEqual(['ingests', 'snapshots/overlayfs']);
  });

  it('refuses a bad resource type or empty id with INVALID_ARGUMENT', async () => {
    const leases = t.services.leases;
    leases.create(NS, 'l');
    await expectBerthError(() => leases.addResource(NS, 'l', { type: 'containers', id: 'x' }), 'INVALID_ARGUMENT', /resource type "containers"/);
    await expectBerthError(() => leases.addResource(NS, 'l', { type: 'snapshots/', id: 'x' }), 'INVALID_ARGUMENT');
    await expectBerthError(() => leases.addResource(NS, 'l', { type: 'content', id: '' }), 'INVALID_ARGUMENT', /must not be empty/);
    await expectBerthError(() => leases.deleteResource(NS, 'l', { type: 'bogus', id: 'x' }), 'INVALID_ARGUMENT');
    expect(leases.listResources(NS, 'l')).toEqual([]);
  });

  it('reports NOT_FOUND for resources of an unknown lease', async () => {
    const leases = t.services.leases;
    await expectBerthError(() => leases.addResource(NS, 'ghost', { type: 'content', id: 'x' }), 'NOT_FOUND', 'lease ghost: not found');
    await expectBerthError(() => leases.deleteResource(NS, 'ghost', { type: 'content', id: 'x' }), 'NOT_FOUND');
    await expectBerthError(() => leases.listResources(NS, 'ghost'), 'NOT_FOUND');
  });

  it('deletes a lease and its resources', async () => {
    const leases = t.services.leases;
    leases.create(NS, 'l');
    leases.addResource(NS, 'l', { type: 'ingests', id: 'ref' });
    await leases.delete(NS, 'l');
    expect(leases.list(NS)).toEqual([]);
    await expectBerthError(() => leases.listResources(NS, 'l'), 'NOT_FOUND');
    await expectBerthError(() => leases.delete(NS, 'l'), 'NOT_FOUND');
    expect(t.services.meta.db.prepare('SELECT COUNT(*) AS n FROM lease_resources').get()).toEqual({ n: 0 });
  });
});

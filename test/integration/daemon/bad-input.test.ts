import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBerthd } from '../../helpers/berthd.js';
import { apiClient, type ApiClient } from '../../helpers/grpc.js';

const CONTENT = 'containerd.services.content.v1.Content';
const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';
const IMAGES = 'containerd.services.images.v1.Images';
const LEASES = 'containerd.services.leases.v1.Leases';
const NAMESPACES = 'containerd.services.namespaces.v1.Namespaces';
const DIFF = 'containerd.services.diff.v1.Diff';

interface GrpcFailure {
  code: number;
  details: string;
}

async function failure(p: Promise<unknown>): Promise<GrpcFailure> {
  try {
    await p;
  } catch (err) {
    return err as GrpcFailure;
  }
  throw new Error('call succeeded; expected an error');
}

const sha256 = (data: string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Each bad input gets its gRPC code and a message a person can act on, and stores nothing. */
describe('berthd refuses bad input', () => {
  const daemon = useBerthd();
  let api: ApiClient;
  beforeAll(() => {
    api = apiClient(daemon().address);
  });
  afterAll(() => api.close());

  it('requires a namespace on namespaced calls and validates it', async () => {
    const missing = await failure(api.serverStream(`${CONTENT}/List`, {}, null));
    expect(missing.code).toBe(status.FAILED_PRECONDITION);
    expect(missing.details).toMatch(/namespace is required/);
    const bad = await failure(api.serverStream(`${CONTENT}/List`, {}, 'bad/ns'));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/namespace "bad\/ns": invalid/);
  });

  it.each([
    ['sha256:../..', /invalid sha256/],
    ['sha256:abc', /invalid sha256/],
    [`sha256:${'A'.repeat(64)}`, /invalid sha256/],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', /unsupported algorithm "md5"/],
    ['nocolon', /expected "sha256:<64 hex digits>"/],
  ])('rejects digest %s with INVALID_ARGUMENT', async (digest, message) => {
    const err = await failure(api.unary(`${CONTENT}/Info`, { digest }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
  });

  it('reports unknown content as NOT_FOUND', async () => {
    const err = await failure(api.unary(`${CONTENT}/Info`, { digest: sha256('nothing') }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/not found/);
  });

  it.each([
    ['size', { total: 999 }, /unexpected commit size 5, expected 999/],
    ['digest', { expected: sha256('other') }, /unexpected commit digest/],
  ])('refuses a commit with the wrong %s and stores nothing', async (_what, commit, message) => {
    const ref = `bad-commit-${_what}`;
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'WRITE', ref, data: Buffer.from('hello') });
    expect((await w.read()).offset).toBe(5);
    w.write({ action: 'COMMIT', ref, ...commit });
    const err = await failure(w.read());
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(message);
    expect(err.details).toMatch(/nothing stored/);
    expect((await failure(api.unary(`${CONTENT}/Info`, { digest: sha256('hello') }))).code).toBe(status.NOT_FOUND);
    expect(await readdir(join(daemon().root, 'content', 'blobs', 'sha256'))).not.toContain(sha256('hello').slice(7));
    expect((await failure(api.unary(`${CONTENT}/Status`, { ref }))).code).toBe(status.NOT_FOUND);
  });

  it('requires a ref on the first Write message', async () => {
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'WRITE', data: Buffer.from('x') });
    const err = await failure(w.read());
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/must set ref/);
  });

  it('refuses a write at the wrong offset with OUT_OF_RANGE', async () => {
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'WRITE', ref: 'gap', data: Buffer.from('abc') });
    await w.read();
    w.write({ action: 'WRITE', ref: 'gap', offset: 10, data: Buffer.from('def') });
    const err = await failure(w.read());
    expect(err.code).toBe(status.OUT_OF_RANGE);
    expect(err.details).toMatch(/resume at 3/);
  });

  it('validates snapshot requests', async () => {
    const missingParent = await failure(api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: 'k1', parent: 'nope' }));
    expect(missingParent.code).toBe(status.NOT_FOUND);
    expect(missingParent.details).toMatch(/parent snapshot nope: not found/);
    const noKey = await failure(api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: '' }));
    expect(noKey.code).toBe(status.INVALID_ARGUMENT);
    const wrongSnapshotter = await failure(api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'zfs', key: 'k2' }));
    expect(wrongSnapshotter.code).toBe(status.INVALID_ARGUMENT);
    expect(wrongSnapshotter.details).toMatch(/berthd provides "overlayfs"/);
    await api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: 'active-parent' });
    const uncommitted = await failure(api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: 'k3', parent: 'active-parent' }));
    expect(uncommitted.code).toBe(status.INVALID_ARGUMENT);
    expect(uncommitted.details).toMatch(/must be committed/);
    const dup = await failure(api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: 'active-parent' }));
    expect(dup.code).toBe(status.ALREADY_EXISTS);
    await api.unary(`${SNAPSHOTS}/Remove`, { snapshotter: 'overlayfs', key: 'active-parent' });
  });

  it('validates images, leases and namespaces', async () => {
    const badTarget = await failure(
      api.unary(`${IMAGES}/Create`, { image: { name: 'x', target: { media_type: 'a', digest: 'sha256:zz', size: 1 } } }),
    );
    expect(badTarget.code).toBe(status.INVALID_ARGUMENT);
    await api.unary(`${LEASES}/Create`, { id: 'dup-lease' });
    expect((await failure(api.unary(`${LEASES}/Create`, { id: 'dup-lease' }))).code).toBe(status.ALREADY_EXISTS);
    const badExpire = await failure(api.unary(`${LEASES}/Create`, { id: 'l2', labels: { 'containerd.io/gc.expire': 'tomorrow' } }));
    expect(badExpire.code).toBe(status.INVALID_ARGUMENT);
    expect(badExpire.details).toMatch(/RFC 3339/);
    const notEmpty = await failure(api.unary(`${NAMESPACES}/Delete`, { name: 'default' }));
    expect(notEmpty.code).toBe(status.FAILED_PRECONDITION);
    expect(notEmpty.details).toMatch(/must be empty, but it still has/);
  });

  it('refuses to apply a layer to mounts it did not hand out', async () => {
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'COMMIT', ref: 'tiny', data: Buffer.from('tiny'), expected: sha256('tiny') });
    await w.read();
    await w.end();
    const layer = { media_type: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('tiny'), size: 4 };
    const foreign = await failure(api.unary(`${DIFF}/Apply`, { diff: layer, mounts: [{ type: 'bind', source: '/etc', options: ['rbind', 'rw'] }] }));
    expect(foreign.code).toBe(status.INVALID_ARGUMENT);
    expect(foreign.details).toMatch(/not a writable snapshot of this daemon/);
    const mounts = (await api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key: 'apply-target' })).mounts;
    const badType = await failure(api.unary(`${DIFF}/Apply`, { diff: { ...layer, media_type: 'text/plain' }, mounts }));
    expect(badType.code).toBe(status.INVALID_ARGUMENT);
  });

  it.each([
    ['garbage', Buffer.from('this is not a tar archive, not even close'.repeat(20))],
    ['a corrupt gzip stream', Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03]), Buffer.alloc(600, 0x55)])],
  ])('refuses to apply %s as a layer with INVALID_ARGUMENT', async (what, bytes) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'COMMIT', ref: `corrupt-${what}`, data: bytes, expected: digest });
    await w.read();
    await w.end();
    const key = `corrupt-target-${what.length}`;
    const mounts = (await api.unary(`${SNAPSHOTS}/Prepare`, { snapshotter: 'overlayfs', key })).mounts;
    const err = await failure(
      api.unary(`${DIFF}/Apply`, { diff: { media_type: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length }, mounts }),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/is not a valid tar stream/);
    await api.unary(`${SNAPSHOTS}/Remove`, { snapshotter: 'overlayfs', key });
  });
});

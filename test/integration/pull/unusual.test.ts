import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { expectStoredLikeCtr, openPullRoot, type PullRoot } from './harness.js';
import { startProxy, type Proxy } from './proxy.js';
import { startSecuredRegistry, type TestRegistry } from './registries.js';

/** Unusual but valid images, pushed to a registry of the test's own. */
describe('PullService: unusual manifests', () => {
  let registry: TestRegistry;
  let proxy: Proxy;
  let r: PullRoot;
  let digest: string;
  beforeAll(async () => {
    const dir = await scratchDir('mediatype-');
    registry = await startSecuredRegistry(dir, {}, ['busybox']);
    const m = fixtureManifest('busybox');
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config: m.config, layers: m.layers.map(({ mediaType, digest: d, size }) => ({ mediaType, digest: d, size })) }));
    const put = await fetch(`http://${registry.host}/v2/busybox/manifests/bare`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body,
    });
    expect(put.status, await put.text()).toBe(201);
    digest = String(put.headers.get('docker-content-digest'));
    proxy = await startProxy({ ip: '127.0.0.1', upstream: registry.host, fault: (req) => (req.path.includes('/manifests/') ? { kind: 'content-type', value: 'application/json' } : undefined) });
    r = await openPullRoot();
  });
  afterAll(async () => {
    await r?.dispose();
    await proxy?.close();
    await registry?.stop();
  });

  // Without the optional mediaType field and served as plain application/json (as some
  // registries and static servers do), the document's shape says what it is.
  it('pulls a manifest without a media type as an OCI manifest', async () => {
    const image = await r.puller.pull('default', `${proxy.host}/busybox:bare`);
    expect(image.target).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest });
    expectStoredLikeCtr(r.services, 'default', { ...fixtureManifest('busybox'), digest }, '127.0.0.1', 'busybox');
  });

  it('pulls an image without layers: nothing to unpack, no snapshot label', async () => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const upload = await fetch(`http://${registry.host}/v2/empty/blobs/uploads/`, { method: 'POST' });
    const location = new URL(String(upload.headers.get('location')), `http://${registry.host}`);
    location.searchParams.set('digest', configDigest);
    expect((await fetch(location, { method: 'PUT', body: config, headers: { 'Content-Type': 'application/octet-stream' } })).status).toBe(201);
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers: [] };
    const put = await fetch(`http://${registry.host}/v2/empty/manifests/latest`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify(manifest),
    });
    expect(put.status, await put.text()).toBe(201);
    const image = await r.puller.pull('empty', `${registry.host}/empty:latest`);
    expect(image.target.digest).toBe(put.headers.get('docker-content-digest'));
    expect(r.services.content.info('empty', configDigest).labels['containerd.io/gc.ref.snapshot.overlayfs']).toBeUndefined();
    expect(r.services.snapshots.list('empty')).toEqual([]);
  });
});

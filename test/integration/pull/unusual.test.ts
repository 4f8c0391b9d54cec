import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { expectStoredLikeCtr, openPullRoot, type PullRoot } from './harness.js';
import { startProxy, type Proxy } from './proxy.js';
import { startSecuredRegistry, type TestRegistry } from './registries.js';

/**
 * An OCI manifest without its optional mediaType field, served as plain application/json (as
 * some registries and static servers do): the document's shape says what it is.
 */
describe('PullService: manifests without a media type', () => {
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

  it('pulls it as an OCI manifest', async () => {
    const image = await r.puller.pull('default', `${proxy.host}/busybox:bare`);
    expect(image.target).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest });
    expectStoredLikeCtr(r.services, 'default', { ...fixtureManifest('busybox'), digest }, '127.0.0.1', 'busybox');
  });
});

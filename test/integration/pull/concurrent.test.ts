import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, registryFixtures } from '../../helpers/registry.js';
import { expectStoredLikeCtr, openPullRoot, recorder, type PullRoot } from './harness.js';
import type { LayerProgress } from '../../../services/images/pull/types.js';
import { startProxy, type Proxy } from './proxy.js';

/** Concurrent pulls in one daemon share the layers they have in common. */
describe('PullService: concurrent pulls', () => {
  let r: PullRoot;
  let proxy: Proxy;
  beforeAll(async () => {
    r = await openPullRoot();
    proxy = await startProxy({ ip: '127.0.0.1', upstream: registryFixtures().host });
  });
  afterAll(async () => {
    await proxy?.close();
    await r?.dispose();
  });
  const blobGets = (digest: string): number => proxy.requests.filter((q) => q.path.endsWith(`/blobs/${digest}`)).length;

  it('fetches and unpacks a layer shared by two images once', async () => {
    // busybox-docker is busybox's config and layer under a Docker schema 2 manifest.
    const a = recorder();
    const b = recorder();
    await Promise.all([
      r.puller.pull('shared', `${proxy.host}/busybox:latest`, {}, a.listener),
      r.puller.pull('shared', `${proxy.host}/busybox-docker:latest`, {}, b.listener),
    ]);
    expectStoredLikeCtr(r.services, 'shared', fixtureManifest('busybox'), '127.0.0.1', 'busybox');
    expect(r.services.content.info('shared', fixtureManifest('busybox-docker').digest).labels['containerd.io/gc.ref.content.config']).toBe(
      fixtureManifest('busybox').config.digest,
    );
    for (const l of fixtureManifest('busybox').layers) {
      expect(blobGets(l.digest)).toBe(1);
      const unpacks = [...a.events, ...b.events].filter((e) => e.digest === l.digest && e.status === 'unpacking');
      expect(unpacks).toHaveLength(1);
    }
    expect(r.services.images.list('shared')).toHaveLength(2);
    const layer = r.services.content.info('shared', fixtureManifest('busybox').layers[0]?.digest ?? '');
    expect(layer.labels['containerd.io/distribution.source.127.0.0.1']).toBe('busybox,busybox-docker');
  });

  it('pulls the same image twice at once with one fetch per blob', async () => {
    await Promise.all([1, 2, 3].map(() => r.puller.pull('same', `${proxy.host}/multi:latest`)));
    const manifest = fixtureManifest('multi');
    expectStoredLikeCtr(r.services, 'same', manifest, '127.0.0.1', 'multi');
    // The base layer shared with busybox came from the other namespace's blob: no fetch at all.
    const fetched = (d: string): number => proxy.requests.filter((q) => q.path === `/v2/multi/blobs/${d}`).length;
    for (const l of manifest.layers) expect(fetched(l.digest)).toBe(fixtureManifest('busybox').layers.some((b) => b.digest === l.digest) ? 0 : 1);
  });

  it('shares blobs another namespace holds instead of fetching them', async () => {
    const before = proxy.requests.length;
    await r.puller.pull('other-ns', `${proxy.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'other-ns', fixtureManifest('multi'), '127.0.0.1', 'multi');
    expect(proxy.requests.slice(before).filter((q) => q.path.includes('/blobs/'))).toEqual([]);
  });

  it('fetches a layer itself when the pull it was waiting for is cancelled', async () => {
    const root = await openPullRoot();
    const big = fixtureManifest('multi').layers.reduce((a, b) => (b.size > a.size ? b : a));
    const abort = new AbortController();
    const stalling = await startProxy({
      ip: '127.0.0.1',
      upstream: registryFixtures().host,
      fault: (req, nth) => (req.path.endsWith(big.digest) && nth === 1 ? { kind: 'stall', after: 1000, onStall: () => abort.abort() } : undefined),
    });
    try {
      const ref = `${stalling.host}/multi:latest`;
      // The second pull starts once the first one is downloading the big layer, so it waits on it.
      let startSecond: () => void = () => undefined;
      const downloading = new Promise<void>((resolve) => (startSecond = resolve));
      const onProgress = (p: LayerProgress): void => {
        if (p.digest === big.digest && p.status === 'downloading') startSecond();
      };
      const [cancelled, waiting] = await Promise.allSettled([
        root.puller.pull('cancel', ref, { signal: abort.signal }, onProgress),
        downloading.then(() => root.puller.pull('cancel', ref)),
      ]);
      expect(cancelled.status).toBe('rejected');
      expect(waiting.status === 'rejected' ? String(waiting.reason) : 'fulfilled').toBe('fulfilled');
      expectStoredLikeCtr(root.services, 'cancel', fixtureManifest('multi'), '127.0.0.1', 'multi');
      expect(stalling.requests.filter((q) => q.path.endsWith(big.digest))).toHaveLength(2);
    } finally {
      await stalling.close();
      await root.dispose();
    }
  });
});

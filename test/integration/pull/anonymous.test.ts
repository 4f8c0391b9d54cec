import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureImage, fixtureManifest, registryFixtures } from '../../helpers/registry.js';
import { expectStoredLikeCtr, openPullRoot, recorder, type PullRoot } from './harness.js';

/** Anonymous pulls from the fixture registry (plain HTTP on loopback, reached by fallback). */
describe('PullService: anonymous', () => {
  let r: PullRoot;
  beforeAll(async () => {
    r = await openPullRoot();
  });
  afterAll(async () => r.dispose());
  const host = () => registryFixtures().host;

  it.each(['busybox', 'multi', 'busybox-zstd', 'busybox-docker', 'multi-plain'] as const)('pulls %s and stores what ctr stores', async (name) => {
    const ns = `anon-${name}`;
    const { events, listener } = recorder();
    const image = await r.puller.pull(ns, fixtureImage(name).ref, {}, listener);
    expect(image.name).toBe(fixtureImage(name).ref);
    expect(image.target).toMatchObject(fixtureImage(name).target);
    const manifest = fixtureManifest(name);
    expectStoredLikeCtr(r.services, ns, manifest, '127.0.0.1', name);
    for (const l of manifest.layers) {
      expect(events.filter((e) => e.digest === l.digest).map((e) => e.status)).toContain('unpacked');
    }
  });

  it('re-pulls without fetching again and keeps the image', async () => {
    const ns = 'anon-again';
    await r.puller.pull(ns, fixtureImage('multi').ref);
    const { events, listener } = recorder();
    await r.puller.pull(ns, fixtureImage('multi').ref, {}, listener);
    expect(new Set(events.map((e) => e.status))).toEqual(new Set(['exists']));
    expect(r.services.images.list(ns).map((i) => i.name)).toEqual([fixtureImage('multi').ref]);
  });

  it('picks linux/amd64 from a two-platform index by default and linux/arm64 on request', async () => {
    const image = fixtureImage('multiarch');
    const amd = fixtureManifest('multiarch', 'amd64');
    const arm = fixtureManifest('multiarch', 'arm64');
    await r.puller.pull('arch-default', image.ref);
    expectStoredLikeCtr(r.services, 'arch-default', amd, '127.0.0.1', 'multiarch');
    expect(r.services.content.has('arch-default', arm.digest)).toBe(false);
    const index = r.services.content.info('arch-default', image.target.digest);
    expect(index.labels['containerd.io/gc.ref.content.m.0']).toBe(amd.digest);

    await r.puller.pull('arch-arm', image.ref, { platforms: [{ os: 'linux', architecture: 'arm64' }] });
    expectStoredLikeCtr(r.services, 'arch-arm', arm, '127.0.0.1', 'multiarch');
    expect(r.services.content.has('arch-arm', amd.digest)).toBe(false);
  });

  it('fetches every platform with allPlatforms and unpacks the host one', async () => {
    const image = fixtureImage('multiarch');
    await r.puller.pull('arch-all', image.ref, { allPlatforms: true });
    for (const m of image.manifests) {
      for (const d of [m.digest, m.config.digest, ...m.layers.map((l) => l.digest)]) expect(r.services.content.has('arch-all', d)).toBe(true);
    }
    expectStoredLikeCtr(r.services, 'arch-all', fixtureManifest('multiarch', 'amd64'), '127.0.0.1', 'multiarch');
  });

  it('fails clearly for a platform the index lacks, leaving nothing', async () => {
    await expect(r.puller.pull('arch-none', fixtureImage('multiarch').ref, { platforms: [{ os: 'linux', architecture: 's390x' }] })).rejects.toThrow(
      /no manifest for platform linux\/s390x; the index has: linux\/amd64, linux\/arm64/,
    );
    expect(r.services.content.list('arch-none')).toEqual([]);
  });

  it('pulls by digest and names the image by it', async () => {
    const image = fixtureImage('multi');
    const repo = image.ref.replace(/:latest$/, '');
    const pulled = await r.puller.pull('by-digest', `${repo}@${image.target.digest}`);
    expect(pulled.name).toBe(`${repo}@${image.target.digest}`);
    expectStoredLikeCtr(r.services, 'by-digest', fixtureManifest('multi'), '127.0.0.1', 'multi');
    await expect(r.puller.pull('by-digest', `${repo}@sha256:${'0'.repeat(64)}`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reports a missing tag as NOT_FOUND, leaving nothing', async () => {
    await expect(r.puller.pull('missing', `${host()}/multi:no-such-tag`)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/^127\.0\.0\.1:\d+\/multi:no-such-tag: not found \(GET http:\/\/.*HTTP 404/),
    });
    expect(r.services.leases.list('missing')).toEqual([]);
  });

  it('refuses a reference that does not parse before touching the network', async () => {
    await expect(r.puller.pull('bad', `${host()}/UPPER/case:latest`)).rejects.toThrow(/invalid repository component/);
  });
});

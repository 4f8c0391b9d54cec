import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureManifest, registryFixtures } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { expectStoredLikeCtr, openPullRoot, type PullRoot } from './harness.js';
import type { LayerProgress } from '../../../services/images/pull/types.js';
import { blobPath, startProxy, type Fault, type Proxy, type SeenRequest } from './proxy.js';

/** The biggest layer of `multi`: the one worth cutting. */
function bigLayer(): { digest: string; size: number } {
  const layers = fixtureManifest('multi').layers;
  return layers.reduce((a, b) => (b.size > a.size ? b : a));
}

describe('PullService against failure-injecting proxies', () => {
  // A fresh root per test: blobs another namespace holds would be shared, not fetched.
  let r: PullRoot;
  const proxies: Proxy[] = [];
  beforeEach(async () => {
    r = await openPullRoot({ client: { attempts: 4, backoffMs: 20, stallMs: 500 } });
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await r.dispose();
  });

  const proxy = async (fault: (req: SeenRequest, nth: number) => Fault | undefined, ip = '127.0.0.1'): Promise<Proxy> => {
    const p = await startProxy({ ip, upstream: registryFixtures().host, fault });
    proxies.push(p);
    return p;
  };
  const onBig = (fault: Fault, times = 1) => (req: SeenRequest, nth: number): Fault | undefined =>
    req.path === blobPath('multi', bigLayer().digest) && nth <= times ? fault : undefined;
  const blobRequests = (p: Proxy): SeenRequest[] => p.requests.filter((q) => q.path === blobPath('multi', bigLayer().digest));

  it('resumes a blob cut mid-way with a Range request and completes', async () => {
    const half = Math.floor(bigLayer().size / 2);
    const p = await proxy(onBig({ kind: 'cut', after: half }));
    await r.puller.pull('cut', `${p.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'cut', fixtureManifest('multi'), '127.0.0.1', 'multi');
    const [first, second] = blobRequests(p);
    expect(first?.headers.range).toBeUndefined();
    // Node may drop what it had buffered when the connection broke; we resume from what we hold.
    const start = Number(/^bytes=(\d+)-$/.exec(String(second?.headers.range))?.[1]);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(half);
  });

  it('resumes after a stall (no bytes for the stall deadline), not a total timeout', async () => {
    const half = Math.floor(bigLayer().size / 2);
    const p = await proxy(onBig({ kind: 'stall', after: half }));
    await r.puller.pull('stall', `${p.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'stall', fixtureManifest('multi'), '127.0.0.1', 'multi');
    expect(blobRequests(p)[1]?.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('copes with a server that ignores Range on the retry', async () => {
    const half = Math.floor(bigLayer().size / 2);
    const p = await proxy((req, nth) => (req.path === blobPath('multi', bigLayer().digest) ? (nth === 1 ? { kind: 'cut', after: half } : { kind: 'ignore-range' }) : undefined));
    await r.puller.pull('norange', `${p.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'norange', fixtureManifest('multi'), '127.0.0.1', 'multi');
  });

  it('resumes an interrupted pull from its ingest on the next pull', async () => {
    const half = Math.floor(bigLayer().size / 2);
    const abort = new AbortController();
    const p = await proxy(onBig({ kind: 'stall', after: half }));
    // Interrupted once part of the big layer is in its ingest (progress is reported per MiB).
    const interrupt = (e: LayerProgress): void => {
      if (e.digest === bigLayer().digest && e.status === 'downloading' && e.offset > 0) abort.abort();
    };
    await expect(r.puller.pull('interrupted', `${p.host}/multi:latest`, { signal: abort.signal }, interrupt)).rejects.toThrow();
    expect(r.services.images.list('interrupted')).toEqual([]);
    const [ingest] = (await r.services.content.listStatuses('interrupted')).filter((s) => s.expected === bigLayer().digest);
    expect(ingest?.offset).toBeGreaterThan(0);
    await r.puller.pull('interrupted', `${p.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'interrupted', fixtureManifest('multi'), '127.0.0.1', 'multi');
    expect(blobRequests(p)[1]?.headers.range).toBe(`bytes=${ingest?.offset ?? 0}-`);
  });

  it('fails a blob with the wrong digest clearly and stores nothing', async () => {
    const p = await proxy((req) => (req.path === blobPath('multi', bigLayer().digest) ? { kind: 'corrupt', at: 1000 } : undefined));
    await expect(r.puller.pull('corrupt', `${p.host}/multi:latest`)).rejects.toThrow(
      new RegExp(`blob ${bigLayer().digest} from 127\\.0\\.0\\.1:\\d+/multi: the registry sent ${bigLayer().size} bytes that hash to sha256:[0-9a-f]{64}; refusing them, nothing was stored`),
    );
    expect(r.services.content.list('corrupt')).toEqual([]);
    expect(r.services.snapshots.list('corrupt')).toEqual([]);
    expect(r.services.images.list('corrupt')).toEqual([]);
    expect(r.services.leases.list('corrupt')).toEqual([]);
    expect((await r.services.content.listStatuses('corrupt')).map((s) => s.expected)).not.toContain(bigLayer().digest);
  });

  it('never sends credentials to the host a blob redirect names', async () => {
    const dir = await scratchDir('redirect-');
    const storage = await startProxy({ ip: '127.0.0.3', upstream: registryFixtures().host });
    proxies.push(storage);
    const front = await startProxy({
      ip: '127.0.0.2',
      upstream: registryFixtures().host,
      requireBasic: 'carol:pw',
      fault: (req) => (req.path.includes('/blobs/') ? { kind: 'redirect', to: storage.host } : undefined),
    });
    proxies.push(front);
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ auths: { [front.host]: { auth: Buffer.from('carol:pw').toString('base64') } } }));
    const root = await openPullRoot({ dockerConfig: config });
    try {
      await root.puller.pull('default', `${front.host}/multi:latest`);
      expectStoredLikeCtr(root.services, 'default', fixtureManifest('multi'), '127.0.0.2', 'multi');
    } finally {
      await root.dispose();
    }
    expect(front.requests.some((q) => q.headers.authorization !== undefined)).toBe(true);
    expect(storage.requests.filter((q) => q.path.includes('/blobs/')).length).toBeGreaterThan(0);
    expect(storage.requests.filter((q) => q.headers.authorization !== undefined)).toEqual([]);
  });
});

import { rm } from 'node:fs/promises';
import { expect } from 'vitest';
import { openServices, type Services } from '../../../services/daemon/daemon.js';
import { PullService, type PullConfig } from '../../../services/images/pull/service.js';
import type { LayerProgress } from '../../../services/images/pull/types.js';
import { silentLogger } from '../../../services/log.js';
import type { FixtureManifest } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { chainId } from '../../helpers/snapshots.js';

/** An in-process daemon root with a PullService over it. */
export interface PullRoot {
  root: string;
  services: Services;
  puller: PullService;
  dispose(): Promise<void>;
}

/** Retries fast in tests: failure-injection proxies break connections on purpose. */
export const FAST_RETRIES = { attempts: 4, backoffMs: 20, stallMs: 10_000 };

export async function openPullRoot(config: PullConfig = {}): Promise<PullRoot> {
  const root = await scratchDir('pull-');
  const services = await openServices(root, silentLogger);
  const puller = new PullService(services, { hostsDir: `${root}/no-certs.d`, client: FAST_RETRIES, ...config }, silentLogger);
  return {
    root,
    services,
    puller,
    dispose: async () => {
      await services.gc.schedule(true);
      await services.snapshots.removalsDone();
      services.meta.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A progress listener that keeps everything it was told. */
export function recorder(): { events: LayerProgress[]; listener: (p: LayerProgress) => void } {
  const events: LayerProgress[] = [];
  return { events, listener: (p) => events.push(p) };
}

/**
 * What `ctr images pull` leaves for one platform manifest: content with containerd's gc.ref,
 * distribution.source and uncompressed labels, snapshots committed under chain IDs and the
 * config pointing at the top one. The source label lists every repository the blob came from.
 */
export function expectStoredLikeCtr(services: Services, ns: string, manifest: FixtureManifest, sourceKey: string, repo: string): void {
  const source = `containerd.io/distribution.source.${sourceKey}`;
  const m = services.content.info(ns, manifest.digest);
  expect(m.labels['containerd.io/gc.ref.content.config']).toBe(manifest.config.digest);
  manifest.layers.forEach((l, i) => expect(m.labels[`containerd.io/gc.ref.content.l.${i}`]).toBe(l.digest));
  const repos = (labels: Record<string, string>): string[] => (labels[source] ?? '').split(',');
  expect(repos(m.labels)).toContain(repo);
  const top = chainId(manifest.layers.map((l) => l.diffId));
  const config = services.content.info(ns, manifest.config.digest);
  expect(config.labels['containerd.io/gc.ref.snapshot.overlayfs']).toBe(top);
  expect(repos(config.labels)).toContain(repo);
  manifest.layers.forEach((l, i) => {
    const info = services.content.info(ns, l.digest);
    expect(info.size).toBe(l.size);
    expect(info.labels['containerd.io/uncompressed']).toBe(l.diffId);
    expect(repos(info.labels)).toContain(repo);
    const chain = chainId(manifest.layers.slice(0, i + 1).map((x) => x.diffId));
    const snap = services.snapshots.stat(ns, chain);
    expect(snap.kind).toBe('committed');
    expect(snap.parent).toBe(i === 0 ? '' : chainId(manifest.layers.slice(0, i).map((x) => x.diffId)));
  });
  expect(services.leases.list(ns)).toEqual([]);
}

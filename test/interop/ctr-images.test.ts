import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ctr } from '../helpers/ctr.js';
import { useBerthd } from '../helpers/berthd.js';
import { fixtureImage, fixtureLayerPaths, fixtureManifest, type FixtureImageName } from '../helpers/registry.js';
import { chainId, mountImage } from '../helpers/snapshots.js';
import { compareTrees, expectedTree, snapshotTree } from '../helpers/tree.js';

/** The stock ctr (containerd 1.6) pulling, listing and removing images against berthd. */
describe('ctr images against berthd', () => {
  const daemon = useBerthd();
  const run = async (args: string[], namespace?: string): Promise<string> => {
    const r = await ctr(daemon().address, args, { namespace });
    expect(r.code, `ctr ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const pull = (name: FixtureImageName, namespace?: string): Promise<string> =>
    run(['images', 'pull', '--plain-http', fixtureImage(name).ref], namespace);

  it('answers version and lists its plugins', async () => {
    expect(await run(['version'])).toMatch(/Server:\s+Version:\s+\d+\.\d+\.\d+/);
    const plugins = await run(['plugins', 'ls']);
    expect(plugins).toMatch(/io\.containerd\.snapshotter\.v1\s+overlayfs\s+linux\/amd64\s+ok/);
    expect(plugins).toMatch(/io\.containerd\.grpc\.v1\s+content\s+-\s+ok/);
  });

  it('creates, labels, lists and removes namespaces', async () => {
    await run(['namespaces', 'create', 'nsone', 'team=a']);
    await run(['namespaces', 'label', 'nsone', 'team=b', 'env=test']);
    const listed = await run(['namespaces', 'ls']);
    expect(listed).toMatch(/nsone\s+env=test,team=b/);
    await run(['namespaces', 'rm', 'nsone']);
    expect(await run(['namespaces', 'ls'])).not.toContain('nsone');
  });

  it.each(['busybox', 'multi', 'multi-plain', 'busybox-zstd', 'busybox-docker'] as const)(
    'pulls %s completely and unpacks it to the chain ID',
    async (name) => {
      const ns = `pull-${name}`;
      await pull(name, ns);
      const image = fixtureImage(name);
      expect(await run(['images', 'ls', '-q'], ns)).toContain(image.ref);
      const check = await run(['images', 'check'], ns);
      expect(check).toMatch(/complete \((\d+)\/\1\)/);
      expect(check).toMatch(/\btrue\s*$/m);
      const manifest = fixtureManifest(name);
      const content = await run(['content', 'ls', '-q'], ns);
      for (const d of [manifest.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        expect(content).toContain(d);
      }
      const snapshots = await run(['snapshots', 'ls'], ns);
      expect(snapshots).toContain(chainId(manifest.layers.map((l) => l.diffId)));
    },
  );

  it('serves blobs byte for byte with ctr content get', async () => {
    await pull('busybox');
    const manifest = fixtureManifest('busybox');
    const got = await run(['content', 'get', manifest.digest]);
    expect(JSON.parse(got)).toMatchObject({ config: { digest: manifest.config.digest } });
  });

  it('unpacks the multi-layer image file by file as GNU tar plus whiteouts does', async () => {
    await pull('multi');
    const expected = await expectedTree(fixtureLayerPaths('multi'));
    const mounted = await mountImage(daemon().address, fixtureImage('multi').ref);
    try {
      const diffs = compareTrees(await snapshotTree(expected.dir), await snapshotTree(mounted.dir));
      expect(diffs).toEqual([]);
    } finally {
      await mounted.unmount();
      await expected.remove();
    }
  });

  it('shows snapshot info, usage and tree', async () => {
    await pull('multi');
    const manifest = fixtureManifest('multi');
    const top = chainId(manifest.layers.map((l) => l.diffId));
    const info = JSON.parse(await run(['snapshots', 'info', top])) as { Kind: string; Parent: string };
    expect(info.Kind).toBe('Committed');
    expect(info.Parent).toBe(chainId(manifest.layers.slice(0, -1).map((l) => l.diffId)));
    expect(await run(['snapshots', 'usage', top])).toMatch(/\d+(\.\d+)?\s*[KMG]?i?B?\s+\d+/);
    const tree = await run(['snapshots', 'tree']);
    expect(tree).toContain(top);
  });

  it('removes blobs and snapshots from disk when the image is removed', async () => {
    const ns = 'gc';
    await pull('multi', ns);
    const blobsDir = join(daemon().root, 'content', 'blobs', 'sha256');
    const before = new Set(await readdir(blobsDir));
    const manifest = fixtureManifest('multi');
    expect(before).toContain(manifest.digest.slice('sha256:'.length));
    await run(['images', 'rm', '--sync', fixtureImage('multi').ref], ns);
    expect(await run(['content', 'ls', '-q'], ns)).toBe('');
    expect(await run(['snapshots', 'ls'], ns)).not.toContain('sha256:');
    const after = new Set(await readdir(blobsDir));
    // Other namespaces of this daemon may still hold the same blobs; this one's unique manifest is gone.
    const stillReferenced = (await run(['content', 'ls', '-q'])).includes(manifest.digest);
    expect(after.has(manifest.digest.slice('sha256:'.length))).toBe(stillReferenced);
  });

  it('lists and removes leases', async () => {
    await run(['leases', 'create', '--id', 'lease-one', '--expires', '1h']);
    expect(await run(['leases', 'ls'])).toMatch(/lease-one\s+.*containerd\.io\/gc\.expire=/);
    await run(['leases', 'rm', 'lease-one']);
    expect(await run(['leases', 'ls'])).not.toContain('lease-one');
  });
});

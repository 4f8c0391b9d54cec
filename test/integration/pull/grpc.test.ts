import { afterAll, describe, expect, it } from 'vitest';
import { removeNamespaceCgroups } from '../../helpers/cgroups.js';
import { useBerthd } from '../../helpers/berthd.js';
import { ctr, uniqueName } from '../../helpers/ctr.js';
import { apiClient } from '../../helpers/grpc.js';
import { fixtureImage, fixtureLayerPaths, fixtureManifest } from '../../helpers/registry.js';
import { configWithShim } from '../../helpers/shims.js';
import { chainId, mountImage } from '../../helpers/snapshots.js';
import { compareTrees, expectedTree, snapshotTree } from '../../helpers/tree.js';

const PULL = 'berth.services.pull.v1.Pull/Pull';

/** berthd's own Pull API, checked with the stock ctr: what it stores is what ctr pull stores. */
describe('berth.services.pull.v1.Pull', () => {
  const daemon = useBerthd();
  const ctrOk = async (args: string[], namespace?: string): Promise<string> => {
    const r = await ctr(daemon().address, args, { namespace });
    expect(r.code, `ctr ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };

  it('streams layer progress, ends with the image record, and ctr sees a complete unpacked image', async () => {
    const api = apiClient(daemon().address);
    try {
      const image = fixtureImage('multi');
      const messages = await api.serverStream(PULL, { ref: image.ref }, 'grpc-pull');
      const last = messages[messages.length - 1] as { image?: { name: string; target: { digest: string } } };
      expect(last.image?.name).toBe(image.ref);
      expect(last.image?.target.digest).toBe(image.target.digest);
      const manifest = fixtureManifest('multi');
      const statuses = (digest: string): unknown[] =>
        messages.flatMap((m) => ((m.layer as { digest: string; status: string } | undefined)?.digest === digest ? [(m.layer as { status: string }).status] : []));
      for (const l of manifest.layers) expect(statuses(l.digest)).toEqual(expect.arrayContaining(['downloading', 'downloaded', 'unpacked']));

      const check = await ctrOk(['images', 'check'], 'grpc-pull');
      expect(check).toMatch(/complete \((\d+)\/\1\)/);
      expect(check).toMatch(/\btrue\s*$/m);
      expect(await ctrOk(['snapshots', 'ls'], 'grpc-pull')).toContain(chainId(manifest.layers.map((l) => l.diffId)));
      expect(await ctrOk(['leases', 'ls', '-q'], 'grpc-pull')).toBe('');
    } finally {
      api.close();
    }
  });

  it('unpacks file by file as GNU tar plus whiteouts does', async () => {
    const api = apiClient(daemon().address);
    const expected = await expectedTree(fixtureLayerPaths('multi'));
    try {
      await api.serverStream(PULL, { ref: fixtureImage('multi').ref }, 'grpc-tree');
      const mounted = await mountImage(daemon().address, fixtureImage('multi').ref, { namespace: 'grpc-tree' });
      try {
        expect(compareTrees(await snapshotTree(expected.dir), await snapshotTree(mounted.dir))).toEqual([]);
      } finally {
        await mounted.unmount();
      }
    } finally {
      await expected.remove();
      api.close();
    }
  });

  it('answers a platform the index lacks with NOT_FOUND', async () => {
    const api = apiClient(daemon().address);
    try {
      await expect(
        api.serverStream(PULL, { ref: fixtureImage('multiarch').ref, platforms: [{ os: 'linux', architecture: 'riscv64' }] }, 'grpc-none'),
      ).rejects.toMatchObject({ code: 5, details: expect.stringMatching(/no manifest for platform linux\/riscv64/) });
    } finally {
      api.close();
    }
  });
});

describe('berth.services.pull.v1.Pull then ctr run', () => {
  // containerd's runc shim: the container runs from the snapshots our pull committed.
  const daemon = useBerthd({ args: ['--config', configWithShim('/usr/bin/containerd-shim-runc-v2')] });
  const ns = uniqueName('pullrun');

  afterAll(async () => {
    expect(await removeNamespaceCgroups(ns)).toEqual([]);
  });

  it('runs a container from a Pull-ed image', async () => {
    const api = apiClient(daemon().address);
    try {
      await api.serverStream(PULL, { ref: fixtureImage('busybox').ref }, ns);
    } finally {
      api.close();
    }
    const r = await ctr(daemon().address, ['run', '--rm', fixtureImage('busybox').ref, uniqueName('echo'), 'echo', 'pulled'], { namespace: ns });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('pulled\n');
    expect(r.code).toBe(0);
  });

  it('leaves an index image complete for ctr images check (host platform only fetched)', async () => {
    const api = apiClient(daemon().address);
    try {
      await api.serverStream(PULL, { ref: fixtureImage('multiarch').ref }, ns);
    } finally {
      api.close();
    }
    const r = await ctr(daemon().address, ['images', 'check'], { namespace: ns });
    expect(r.stdout).toMatch(new RegExp(`${fixtureImage('multiarch').ref.replace(/[.]/g, '\\.')}\\s+application/vnd\\.oci\\.image\\.index\\.v1\\+json\\s+sha256:[0-9a-f]+\\s+complete \\((\\d+)/\\1\\)`));
  });
});

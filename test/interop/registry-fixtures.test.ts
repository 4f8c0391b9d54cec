import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk } from '../helpers/exec.js';
import { chainId } from '../helpers/snapshots.js';
import { compareTrees, expectedTree, snapshotTree, type ExpectedTree, type Tree } from '../helpers/tree.js';
import {
  FIXTURE_IMAGES,
  fixtureImage,
  fixtureLayerPaths,
  fixtureManifest,
  type FixtureImageName,
  type FixtureLayer,
} from '../helpers/registry.js';

// Checks the fixtures with clients that share no code with berthd (skopeo, gzip, zstd,
// sha256): the registry serves what global setup says it serves, and every digest, size and
// diff_id the daemon tests rely on is right.

interface SkopeoInspect {
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
}

async function skopeo(args: readonly string[]): Promise<string> {
  return (await runOk('skopeo', ['inspect', '--tls-verify=false', ...args], { timeoutMs: 60_000 })).stdout;
}

function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(`sha256:${h.digest('hex')}`));
  });
}

const DECOMPRESS: Record<string, string> = {
  'application/vnd.oci.image.layer.v1.tar': 'cat',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip -dc',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd -dcq',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip -dc',
};

/** sha256 of the uncompressed stream of a layer blob, computed by the system tools. */
async function diffIdOf(path: string, mediaType: string): Promise<string> {
  const tool = DECOMPRESS[mediaType];
  if (!tool) throw new Error(`unexpected layer media type ${mediaType}`);
  const r = await runOk('bash', ['-o', 'pipefail', '-c', `${tool} "$1" | sha256sum`, 'diffid', path]);
  return `sha256:${r.stdout.slice(0, 64)}`;
}

const SINGLE_PLATFORM = FIXTURE_IMAGES.filter((n) => n !== 'multiarch');

describe.each(SINGLE_PLATFORM)('fixture image %s', (name: FixtureImageName) => {
  const image = fixtureImage(name);
  const manifest = fixtureManifest(name);
  let pulled: string;

  beforeAll(async () => {
    pulled = await mkdtemp(join(tmpdir(), `berth-skopeo-${name}-`));
    await runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${image.ref}`, `dir:${pulled}`], {
      timeoutMs: 120_000,
    });
  });
  afterAll(async () => {
    if (pulled) await rm(pulled, { recursive: true, force: true });
  });

  it('is served by the registry with the built manifest digest and layers', async () => {
    const raw = await skopeo(['--raw', `docker://${image.ref}`]);
    expect(sha256(raw)).toBe(image.target.digest);
    expect(Buffer.byteLength(raw)).toBe(image.target.size);
    const info = JSON.parse(await skopeo([`docker://${image.ref}`])) as SkopeoInspect;
    expect(info.Digest).toBe(manifest.digest);
    expect([info.Os, info.Architecture]).toEqual(['linux', 'amd64']);
    expect(info.Layers).toEqual(manifest.layers.map((l) => l.digest));
  });

  it('has a config whose diff_ids match the layers', async () => {
    const config = JSON.parse(await skopeo(['--config', `docker://${image.ref}`])) as {
      rootfs: { diff_ids: string[] };
    };
    expect(config.rootfs.diff_ids).toEqual(manifest.layers.map((l) => l.diffId));
  });

  it('serves layer blobs whose digest, size and uncompressed digest are right', async () => {
    for (const layer of manifest.layers) {
      const hex = layer.digest.slice('sha256:'.length);
      const blob = join(pulled, hex);
      expect(await sha256File(blob)).toBe(layer.digest);
      expect(await sha256File(layer.path)).toBe(layer.digest);
      expect(await diffIdOf(blob, layer.mediaType)).toBe(layer.diffId);
    }
  });
});

describe('fixture layer formats', () => {
  const mediaTypes = (name: FixtureImageName): string[] => fixtureManifest(name).layers.map((l) => l.mediaType);
  const gzip = 'application/vnd.oci.image.layer.v1.tar+gzip';

  it('covers gzip, zstd, uncompressed and Docker layers with identical contents', () => {
    expect(mediaTypes('busybox')).toEqual([gzip]);
    expect(mediaTypes('busybox-zstd')).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);
    expect(mediaTypes('busybox-docker')).toEqual(['application/vnd.docker.image.rootfs.diff.tar.gzip']);
    expect(fixtureImage('busybox-docker').target.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(fixtureManifest('busybox-docker').config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(mediaTypes('multi')).toEqual(Array<string>(5).fill(gzip));
    expect(mediaTypes('multi-plain')).toEqual(Array<string>(5).fill('application/vnd.oci.image.layer.v1.tar'));
    const diffIds = (name: FixtureImageName): string[] => fixtureManifest(name).layers.map((l: FixtureLayer) => l.diffId);
    expect(diffIds('busybox-zstd')).toEqual(diffIds('busybox'));
    expect(diffIds('busybox-docker')).toEqual(diffIds('busybox'));
    expect(diffIds('multi-plain')).toEqual(diffIds('multi'));
    expect(diffIds('multi')[0]).toBe(diffIds('busybox')[0]);
  });

  it('puts whiteouts and an opaque marker in the top multi layer', async () => {
    const top = fixtureManifest('multi').layers[4];
    if (!top) throw new Error('multi has no fifth layer');
    const names = (await runOk('tar', ['-tf', top.path])).stdout.split('\n');
    expect(names).toEqual(
      expect.arrayContaining([
        'data/random/.wh.r1.bin',
        'data/.wh.scratch',
        'usr/share/small/.wh.d07',
        'usr/share/small/d03/.wh..wh..opq',
      ]),
    );
  });
});

describe('fixture image multiarch', () => {
  const image = fixtureImage('multiarch');

  it('is an OCI index with linux/amd64 (busybox) and linux/arm64 manifests', async () => {
    const raw = await skopeo(['--raw', `docker://${image.ref}`]);
    expect(sha256(raw)).toBe(image.target.digest);
    const index = JSON.parse(raw) as {
      mediaType: string;
      manifests: { digest: string; platform: { os: string; architecture: string } }[];
    };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const byArch = new Map(index.manifests.map((m) => [m.platform.architecture, m.digest]));
    expect([...byArch.keys()].sort()).toEqual(['amd64', 'arm64']);
    expect(byArch.get('amd64')).toBe(fixtureImage('busybox').target.digest);
    expect(byArch.get('arm64')).toBe(fixtureManifest('multiarch', 'arm64').digest);
  });

  it('resolves each platform to its own layers', async () => {
    for (const arch of ['amd64', 'arm64']) {
      const info = JSON.parse(await skopeo(['--override-arch', arch, `docker://${image.ref}`])) as SkopeoInspect;
      const manifest = fixtureManifest('multiarch', arch);
      expect(info.Architecture).toBe(arch);
      // skopeo reports the digest of the reference it resolved, i.e. the index's.
      expect(info.Digest).toBe(image.target.digest);
      expect(info.Layers).toEqual(manifest.layers.map((l) => l.digest));
      const byDigest = `docker://${image.ref.replace(/:latest$/, '')}@${manifest.digest}`;
      expect(sha256(await skopeo(['--raw', byDigest]))).toBe(manifest.digest);
    }
    expect(fixtureManifest('multiarch', 'arm64').layers[0]?.digest).not.toBe(
      fixtureManifest('multiarch', 'amd64').layers[0]?.digest,
    );
  });

  it('is rejected for a platform it does not have', async () => {
    const r = await run('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 's390x', `docker://${image.ref}`]);
    expect(r.code).not.toBe(0);
  });
});

describe('unpacked fixture trees (test/helpers/tree.ts)', () => {
  let multi: ExpectedTree;
  let tree: Tree;

  beforeAll(async () => {
    multi = await expectedTree(fixtureLayerPaths('multi'));
    tree = await snapshotTree(multi.dir);
  });
  afterAll(async () => {
    await multi?.remove();
  });

  it('applies file, dir and opaque whiteouts of the top layer', () => {
    expect(tree.has('data/random/r1.bin')).toBe(false);
    expect(tree.has('data/random/r0.bin')).toBe(true);
    expect(tree.has('data/scratch')).toBe(false);
    expect(tree.has('usr/share/small/d07')).toBe(false);
    expect(tree.has('usr/share/small/d06/f00.txt')).toBe(true);
    const d03 = [...tree.keys()].filter((p) => p.startsWith('usr/share/small/d03/'));
    expect(d03).toEqual(['usr/share/small/d03/fresh.txt']);
    expect([...tree.keys()].some((p) => p.includes('.wh.'))).toBe(false);
  });

  it('keeps file kinds, modes, owners and changed contents', () => {
    const hardA = tree.get('data/links/hard-a.txt');
    expect(hardA?.hardlinkGroup).toBe('data/links/hard-a.txt');
    expect(tree.get('data/links/hard-b.txt')?.hardlinkGroup).toBe('data/links/hard-a.txt');
    expect(tree.get('data/links/rel-link')).toMatchObject({ type: 'symlink', target: '../random/r0.bin' });
    expect(tree.get('usr/local/bin/suid-tool')).toMatchObject({ type: 'file', mode: 0o4755, uid: 0 });
    expect(tree.get('home/user/owned.txt')).toMatchObject({ uid: 1000, gid: 1000 });
    expect(tree.get('home/user')).toMatchObject({ type: 'dir', mode: 0o750 });
    expect(tree.get('tmp')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(tree.get('etc/motd')?.sha256).toBe(sha256('Welcome to the Berth multi-layer fixture.\n'));
    expect(tree.get('usr/share/small/d00/f00.txt')?.sha256).toBe(sha256('replaced in L4\n'));
    expect(tree.get('data/random/r2.bin')?.size).toBe(1572864);
    expect(tree.size).toBeGreaterThan(2000);
  });

  it('finds no difference between gzip and plain layers, and reports one it is shown', async () => {
    const plain = await expectedTree(fixtureLayerPaths('multi-plain'));
    try {
      expect(compareTrees(tree, await snapshotTree(plain.dir))).toEqual([]);
      await runOk('chmod', ['0600', join(plain.dir, 'etc/motd')]);
      await rm(join(plain.dir, 'etc/multi-release'));
      await runOk('sh', ['-c', `echo extra > "$1"/extra.txt`, 'sh', plain.dir]);
      expect(compareTrees(tree, await snapshotTree(plain.dir))).toEqual([
        'etc/motd: mode 0600, expected 0644',
        'etc/multi-release: missing',
        'extra.txt: unexpected file',
      ]);
    } finally {
      await plain.remove();
    }
  });

  it('refuses a layer that would write through a symlink instead of escaping', async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-escape-'));
    try {
      const sh = (script: string): Promise<unknown> => runOk('sh', ['-c', script, 'sh', work]);
      await sh('cd "$1" && mkdir target l1 l2 && ln -s "$1/target" l1/a && mkdir l2/a && echo x > l2/a/f');
      await sh('cd "$1" && tar -C l1 -cf 1.tar a && tar -C l2 -cf 2.tar a/f');
      await expect(expectedTree([join(work, '1.tar'), join(work, '2.tar')])).rejects.toThrow(/below non-directory a/);
      expect((await runOk('ls', ['-A', join(work, 'target')])).stdout).toBe('');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('unpacks busybox (gzip and zstd alike) into a root filesystem that runs', async () => {
    const gz = await expectedTree(fixtureLayerPaths('busybox'));
    const zst = await expectedTree(fixtureLayerPaths('busybox-zstd'));
    try {
      expect(compareTrees(await snapshotTree(gz.dir), await snapshotTree(zst.dir))).toEqual([]);
      const r = await runOk('chroot', [gz.dir, '/bin/sh', '-c', 'id -u; cat /etc/motd; ls /bin | wc -l']);
      expect(r.stdout.split('\n').map((l) => l.trim())).toEqual(['0', 'Welcome to the Berth busybox fixture.', '269', '']);
    } finally {
      await gz.remove();
      await zst.remove();
    }
  });
});

describe('chain IDs (test/helpers/snapshots.ts)', () => {
  it('match an independent computation with sha256sum', async () => {
    const diffIds = fixtureManifest('multi').layers.map((l) => l.diffId);
    const script = 'c=$1; shift; for d; do c=sha256:$(printf "%s %s" "$c" "$d" | sha256sum | cut -c1-64); done; echo "$c"';
    const r = await runOk('bash', ['-c', script, 'chain', ...diffIds]);
    expect(chainId(diffIds)).toBe(r.stdout.trim());
    expect(chainId(diffIds.slice(0, 1))).toBe(diffIds[0]);
  });
});

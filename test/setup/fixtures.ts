import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runOk } from '../helpers/exec.js';
import type {
  Descriptor,
  FixtureImageName,
  FixtureLayer,
  FixtureManifest,
} from '../helpers/registry.js';

const FIXTURES_SRC = fileURLToPath(new URL('../fixtures/', import.meta.url));
const BUILDER = join(FIXTURES_SRC, 'build-images.sh');
const CACHE_ROOT = '/var/tmp/berth-fixtures';
const COMPLETE = '.complete';

/** Everything the fixture bytes depend on; a change to any of them rebuilds the cache. */
async function fixtureKey(): Promise<string> {
  const h = createHash('sha256');
  for (const f of [BUILDER, join(FIXTURES_SRC, 'oci-lib.sh'), '/bin/busybox']) {
    h.update(f).update(await readFile(f));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Returns the dir holding one OCI layout per fixture image, building it on first use. The build
 * goes to a private dir renamed into place, so an interrupted or concurrent build never leaves a
 * half-built entry behind, and a complete entry is never replaced while another run uses it.
 */
export async function ensureFixtures(): Promise<string> {
  const dir = join(CACHE_ROOT, await fixtureKey());
  if (existsSync(join(dir, COMPLETE))) return dir;
  await mkdir(CACHE_ROOT, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await runOk('bash', [BUILDER, tmp], { timeoutMs: 300_000 });
    await writeFile(join(tmp, COMPLETE), new Date().toISOString());
    // Only an incomplete leftover (a build killed between mkdir and rename) is in the way.
    if (!existsSync(join(dir, COMPLETE))) await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir).catch((e: unknown) => {
      if (!existsSync(join(dir, COMPLETE))) throw e; // else a concurrent run won the race
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

interface ManifestJson {
  config: Descriptor;
  layers: Descriptor[];
}
interface IndexJson {
  manifests: (Descriptor & { platform?: { os: string; architecture: string } })[];
}
interface ConfigJson {
  os: string;
  architecture: string;
  rootfs: { diff_ids: string[] };
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

async function readBlobJson<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(blobPath(layout, digest), 'utf8')) as T;
}

function descriptorOf(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

async function readManifest(layout: string, desc: Descriptor): Promise<FixtureManifest> {
  const manifest = await readBlobJson<ManifestJson>(layout, desc.digest);
  const config = await readBlobJson<ConfigJson>(layout, manifest.config.digest);
  const layers = manifest.layers.map((l, i): FixtureLayer => {
    const diffId = config.rootfs.diff_ids[i];
    if (diffId === undefined) throw new Error(`${layout}: config has fewer diff_ids than layers`);
    return { ...descriptorOf(l), diffId, path: blobPath(layout, l.digest) };
  });
  return {
    ...descriptorOf(desc),
    platform: { os: config.os, architecture: config.architecture },
    config: descriptorOf(manifest.config),
    layers,
  };
}

/** The tag's target and per-platform manifests of the OCI layout of fixture `name`. */
export async function readFixtureLayout(
  fixturesDir: string,
  name: FixtureImageName,
): Promise<{ layoutDir: string; target: Descriptor; manifests: FixtureManifest[] }> {
  const layoutDir = join(fixturesDir, name);
  const top = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as IndexJson;
  const target = top.manifests[0];
  if (!target) throw new Error(`${layoutDir}: empty index.json`);
  const children = INDEX_TYPES.has(target.mediaType)
    ? (await readBlobJson<IndexJson>(layoutDir, target.digest)).manifests
    : [target];
  const manifests = await Promise.all(children.map((c) => readManifest(layoutDir, c)));
  return { layoutDir, target: descriptorOf(target), manifests };
}

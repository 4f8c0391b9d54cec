import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { destroyTree, processesUnder } from '../helpers/cleanup.js';
import { checkNoCgroupsLeft, testNamespaceCgroups } from '../helpers/cgroups.js';
import {
  FIXTURE_IMAGES,
  type FixtureImage,
  type FixtureImageName,
  type RegistryFixtures,
} from '../helpers/registry.js';
import { ensureFixtures, readFixtureLayout } from './fixtures.js';
import { fetchDockerManifest, pushLayout, startRegistry, type RunningRegistry } from './registry.js';

async function loadImage(fixturesDir: string, host: string, name: FixtureImageName): Promise<FixtureImage> {
  const ref = `${host}/${name}:latest`;
  if (name === 'busybox-docker') return loadDockerImage(fixturesDir, host, ref);
  const layout = await readFixtureLayout(fixturesDir, name);
  await pushLayout(layout.layoutDir, ref);
  return { name, ref, ...layout };
}

/** busybox converted by skopeo to Docker schema 2; blobs stay those of the busybox layout. */
async function loadDockerImage(fixturesDir: string, host: string, ref: string): Promise<FixtureImage> {
  const source = await readFixtureLayout(fixturesDir, 'busybox');
  const base = source.manifests[0];
  if (!base) throw new Error('busybox layout has no manifest');
  await pushLayout(source.layoutDir, ref, 'v2s2');
  const { descriptor, manifest } = await fetchDockerManifest(host, 'busybox-docker', 'latest');
  const layers = manifest.layers.map((l, i) => {
    const built = base.layers[i];
    if (built?.digest !== l.digest) throw new Error(`busybox-docker layer ${i} differs from busybox's`);
    return { ...built, mediaType: l.mediaType };
  });
  const manifests = [{ ...descriptor, platform: base.platform, config: manifest.config, layers }];
  return { name: 'busybox-docker', ref, target: descriptor, manifests, layoutDir: source.layoutDir };
}

const RUN_PARENT = '/tmp';
const RUN_PREFIX = 'bt-';
/** mkdtemp(RUN_PREFIX) names: the prefix plus six random characters. */
const RUN_NAME = /^bt-[A-Za-z0-9]{6}$/;
const OWNER_FILE = 'owner';
/** A run dir without an owner record is only judged after this long (it may be starting). */
const UNOWNED_GRACE_MS = 10 * 60_000;

/** "pid starttime" of a process: unlike a bare pid, never reused for another process. */
async function processIdentity(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return `${pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  } catch {
    return undefined;
  }
}

async function isStale(dir: string): Promise<boolean> {
  const owner = await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => undefined);
  if (owner !== undefined) return (await processIdentity(Number(owner.split(' ')[0]))) !== owner.trim();
  const age = Date.now() - (await stat(dir)).mtimeMs;
  return age > UNOWNED_GRACE_MS && (await processesUnder(dir)).length === 0;
}

/**
 * Removes run dirs of earlier runs that never reached teardown (vitest killed, machine reset),
 * with whatever daemons and mounts they left behind. Live runs are recognised by their owner.
 */
async function pruneStaleRunDirs(): Promise<void> {
  const names = (await readdir(RUN_PARENT)).filter((n) => RUN_NAME.test(n));
  for (const name of names) {
    const dir = join(RUN_PARENT, name);
    if (await isStale(dir).catch(() => false)) await destroyTree(dir);
  }
}

/**
 * Builds (or reuses) the fixture images, serves them from a private registry and provides its
 * address and the image descriptions to tests (see test/helpers/registry.ts). The run dir is a
 * short path under /tmp because daemons started below it put unix sockets there (108-byte limit).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await pruneStaleRunDirs();
  const cgroupsBefore = await testNamespaceCgroups();
  const runDir = await mkdtemp(join(RUN_PARENT, RUN_PREFIX));
  await writeFile(join(runDir, OWNER_FILE), `${await processIdentity(process.pid)}\n`);
  let registry: RunningRegistry | undefined;
  const teardown = async (): Promise<void> => {
    await registry?.stop();
    await destroyTree(runDir);
    await checkNoCgroupsLeft(cgroupsBefore);
  };
  try {
    const fixturesDir = await ensureFixtures();
    // docker-compose.test.yml runs the registry as a service of its own, on the shared loopback.
    const external = process.env.BERTH_TEST_REGISTRY;
    if (!external) registry = await startRegistry(await mkdtemp(`${runDir}/registry-`));
    const host = external ?? registry?.host ?? '';
    const loaded = await Promise.all(FIXTURE_IMAGES.map((n) => loadImage(fixturesDir, host, n)));
    const images = Object.fromEntries(loaded.map((img) => [img.name, img])) as Record<FixtureImageName, FixtureImage>;
    const fixtures: RegistryFixtures = { host, images };
    project.provide('berthRegistry', fixtures);
    project.provide('berthRunDir', runDir);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}

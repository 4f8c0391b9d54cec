import { mkdtemp } from 'node:fs/promises';
import type { TestProject } from 'vitest/node';
import { destroyTree } from '../helpers/cleanup.js';
import {
  FIXTURE_IMAGES,
  type FixtureImage,
  type FixtureImageName,
  type RegistryFixtures,
} from '../helpers/registry.js';
import { ensureFixtures, readFixtureLayout } from './fixtures.js';
import { pushLayout, startRegistry } from './registry.js';

async function loadImage(fixturesDir: string, host: string, name: FixtureImageName): Promise<FixtureImage> {
  const layout = await readFixtureLayout(fixturesDir, name);
  const ref = `${host}/${name}:latest`;
  await pushLayout(layout.layoutDir, ref);
  return { name, ref, ...layout };
}

/**
 * Builds (or reuses) the fixture images, serves them from a private registry and provides its
 * address and the image descriptions to tests (see test/helpers/registry.ts). The run dir is a
 * short path under /tmp because daemons started below it put unix sockets there (108-byte limit).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runDir = await mkdtemp('/tmp/bt-');
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  const teardown = async (): Promise<void> => {
    await registry?.stop();
    await destroyTree(runDir);
  };
  try {
    const fixturesDir = await ensureFixtures();
    registry = await startRegistry(await mkdtemp(`${runDir}/registry-`));
    const host = registry.host;
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

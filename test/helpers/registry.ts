// How tests reach the fixtures served by test/setup/global.ts:
//
//   import { fixtureImage, fixtureLayerPaths } from '../helpers/registry.js';
//   const ref = fixtureImage('busybox').ref;            // "127.0.0.1:PORT/busybox:latest"
//   await ctr(berthd.address, ['images', 'pull', '--plain-http', ref]);
//   const want = await expectedTree(fixtureLayerPaths('multi'));
//
// Values come from vitest's provide/inject, so they are only available inside test files.
import { inject } from 'vitest';

/**
 * The fixture images. All but busybox-docker are OCI layouts built by
 * test/fixtures/build-images.sh; busybox-docker is busybox pushed as a Docker schema 2 manifest
 * (Docker media types, same config and layer blobs).
 */
export const FIXTURE_IMAGES = ['busybox', 'busybox-zstd', 'busybox-docker', 'multi', 'multi-plain', 'multiarch'] as const;
export type FixtureImageName = (typeof FIXTURE_IMAGES)[number];

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface FixtureLayer extends Descriptor {
  /** sha256 of the uncompressed tar, as in the config's rootfs.diff_ids. */
  diffId: string;
  /** The blob on local disk (compressed as mediaType says); GNU tar reads it directly. */
  path: string;
}

export interface FixtureManifest extends Descriptor {
  platform: { os: string; architecture: string };
  config: Descriptor;
  layers: FixtureLayer[];
}

export interface FixtureImage {
  name: FixtureImageName;
  /** Pullable reference, e.g. "127.0.0.1:40123/busybox:latest". */
  ref: string;
  /** What the tag resolves to: a manifest, or for multiarch an image index. */
  target: Descriptor;
  /** One entry per platform; single-platform images have exactly one (linux/amd64). */
  manifests: FixtureManifest[];
  /** The OCI layout the image was pushed from. */
  layoutDir: string;
}

export interface RegistryFixtures {
  /** host:port of the plain-HTTP registry, e.g. "127.0.0.1:40123". */
  host: string;
  images: Record<FixtureImageName, FixtureImage>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    berthRegistry: RegistryFixtures;
    /** Per-run scratch dir; daemons started by test/helpers/berthd.ts live below it. */
    berthRunDir: string;
  }
}

/** The registry and fixture images started by test/setup/global.ts. */
export function registryFixtures(): RegistryFixtures {
  return inject('berthRegistry');
}

/** A fixture image by name. */
export function fixtureImage(name: FixtureImageName): FixtureImage {
  return registryFixtures().images[name];
}

/** The manifest of `name` for `architecture` (linux), failing loudly if the fixture lacks it. */
export function fixtureManifest(name: FixtureImageName, architecture = 'amd64'): FixtureManifest {
  const m = fixtureImage(name).manifests.find((x) => x.platform.architecture === architecture);
  if (!m) throw new Error(`fixture ${name} has no linux/${architecture} manifest`);
  return m;
}

/** Local paths of the layer blobs of `name` (linux/amd64), bottom layer first. */
export function fixtureLayerPaths(name: FixtureImageName): string[] {
  return fixtureManifest(name).layers.map((l) => l.path);
}

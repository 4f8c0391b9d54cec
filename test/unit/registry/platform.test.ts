import { describe, expect, it } from 'vitest';
import { hostPlatform, normalizePlatform, parsePlatform, platformMatches } from '../../../services/registry/platform.js';
import { selectManifests } from '../../../services/registry/select.js';
import { MEDIA, type Descriptor } from '../../../services/registry/manifest.js';

const manifest = (architecture: string, variant?: string, os = 'linux'): Descriptor => ({
  mediaType: MEDIA.ociManifest,
  digest: `sha256:${(architecture + (variant ?? '')).padEnd(64, '0').replace(/[^0-9a-f]/g, 'f')}`,
  size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe('platforms', () => {
  it('parses and normalizes', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(() => parsePlatform('linux/arm/v7/extra')).toThrow(/expected os\[\/arch\[\/variant\]\]/);
  });

  it('knows the host (amd64 on these machines)', () => {
    expect(hostPlatform()).toEqual(normalizePlatform({ os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch }));
  });

  it('matches arm variants downward only', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' })).toBe(false);
  });

  it('selects the best manifest per wanted platform, skipping attestations', () => {
    const index = { mediaType: MEDIA.ociIndex, manifests: [manifest('unknown', undefined, 'unknown'), manifest('arm', 'v6'), manifest('arm', 'v7'), manifest('amd64')] };
    expect(selectManifests(index, [{ os: 'linux', architecture: 'arm', variant: 'v7' }], false)).toEqual([index.manifests[2]]);
    expect(selectManifests(index, [{ os: 'linux', architecture: 'amd64' }], false)).toEqual([index.manifests[3]]);
    expect(selectManifests(index, [], true)).toHaveLength(4);
    expect(() => selectManifests(index, [{ os: 'linux', architecture: 'arm64' }], false)).toThrow(
      /no manifest for platform linux\/arm64; the index has: unknown\/unknown, linux\/arm\/v6, linux\/arm\/v7, linux\/amd64/,
    );
  });
});

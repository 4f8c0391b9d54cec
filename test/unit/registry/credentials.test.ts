import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDockerConfigPath, dockerConfigCredentials } from '../../../services/registry/credentials.js';

describe('docker config.json credentials', () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockercfg-'));
    path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'r.example:5000': { username: 'u', password: 'p' },
          'https://secure.example': { auth: Buffer.from('a:b').toString('base64') },
          'token.example': { identitytoken: 'refresh' },
          'broken.example': { auth: Buffer.from('no-colon').toString('base64') },
        },
      }),
    );
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('reads auth (password may contain colons), username/password and scheme-prefixed keys', async () => {
    const creds = dockerConfigCredentials(path);
    expect(await creds('docker.io')).toEqual({ username: 'hubuser', secret: 'hub:pass' });
    expect(await creds('registry-1.docker.io')).toEqual({ username: 'hubuser', secret: 'hub:pass' });
    expect(await creds('r.example:5000')).toEqual({ username: 'u', secret: 'p' });
    expect(await creds('secure.example')).toEqual({ username: 'a', secret: 'b' });
    expect(await creds('token.example')).toEqual({ username: '', secret: 'refresh', identityToken: true });
    expect(await creds('other.example')).toBeUndefined();
  });

  it('refuses a malformed auth entry, naming it', async () => {
    await expect(dockerConfigCredentials(path)('broken.example')).rejects.toThrow(/auths\["broken\.example"\]\.auth is not base64 of "user:password"/);
  });

  it('treats a missing file as anonymous and a broken one as an error', async () => {
    expect(await dockerConfigCredentials(join(dir, 'missing.json'))('docker.io')).toBeUndefined();
    await writeFile(join(dir, 'bad.json'), '{');
    await expect(dockerConfigCredentials(join(dir, 'bad.json'))('docker.io')).rejects.toThrow(/bad\.json: not valid JSON/);
  });

  it('finds config.json through DOCKER_CONFIG', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/docker-creds' })).toBe('/etc/docker-creds/config.json');
  });
});

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOk } from '../../helpers/exec.js';
import { fixtureManifest } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { expectStoredLikeCtr, openPullRoot, type PullRoot } from './harness.js';
import { htpasswdAuth, startSecuredRegistry, tokenAuth, type TestRegistry } from './registries.js';
import { startTokenServer, type TokenServer } from './token-server.js';

async function dockerConfig(dir: string, name: string, host: string, user: string, password: string): Promise<string> {
  const path = join(dir, `${name}.json`);
  const auth = Buffer.from(`${user}:${password}`).toString('base64');
  await writeFile(path, JSON.stringify({ auths: { [host]: { auth } } }));
  return path;
}

describe('PullService: basic auth (htpasswd registry)', () => {
  let dir: string;
  let registry: TestRegistry;
  const roots: PullRoot[] = [];
  beforeAll(async () => {
    dir = await scratchDir('basic-');
    const htpasswd = await runOk('htpasswd', ['-Bbn', 'alice', 's3cret']);
    await writeFile(join(dir, 'htpasswd'), htpasswd.stdout);
    registry = await startSecuredRegistry(dir, { auth: htpasswdAuth(join(dir, 'htpasswd')) }, ['multi']);
  });
  afterAll(async () => {
    await Promise.all(roots.map((r) => r.dispose()));
    await registry?.stop();
  });
  const root = async (config: string): Promise<PullRoot> => {
    const r = await openPullRoot({ dockerConfig: config });
    roots.push(r);
    return r;
  };

  it('pulls with the credentials from config.json', async () => {
    const r = await root(await dockerConfig(dir, 'good', registry.host, 'alice', 's3cret'));
    await r.puller.pull('default', `${registry.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'default', fixtureManifest('multi'), '127.0.0.1', 'multi');
  });

  it('fails clearly without credentials and stores nothing', async () => {
    const r = await root(join(dir, 'missing.json'));
    await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toThrow(/requires a login \(basic auth\)/);
    await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(r.services.content.list('default')).toEqual([]);
  });

  it('fails clearly with a wrong password', async () => {
    const r = await root(await dockerConfig(dir, 'bad', registry.host, 'alice', 'wrong'));
    await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toThrow(/refused the credentials for user "alice"/);
    await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('PullService: bearer token auth (registry verifies our test-signed tokens)', () => {
  let dir: string;
  let tokens: TokenServer;
  let registry: TestRegistry;
  const roots: PullRoot[] = [];
  beforeAll(async () => {
    dir = await scratchDir('token-');
    tokens = await startTokenServer(dir, { bob: 'hunter2' });
    registry = await startSecuredRegistry(dir, { auth: tokenAuth(tokens.realm, tokens.service, tokens.issuer, tokens.certPath) }, ['multi', 'multiarch']);
  });
  afterAll(async () => {
    await Promise.all(roots.map((r) => r.dispose()));
    await registry?.stop();
    await tokens?.close();
  });
  const root = async (config: string): Promise<PullRoot> => {
    const r = await openPullRoot({ dockerConfig: config });
    roots.push(r);
    return r;
  };

  it('fetches a token for the repository scope with basic credentials and pulls', async () => {
    const r = await root(await dockerConfig(dir, 'good', registry.host, 'bob', 'hunter2'));
    await r.puller.pull('default', `${registry.host}/multi:latest`);
    expectStoredLikeCtr(r.services, 'default', fixtureManifest('multi'), '127.0.0.1', 'multi');
    const asked = tokens.requests.map((q) => new URL(q.url, 'http://t'));
    expect(asked.some((u) => u.searchParams.get('service') === tokens.service && u.searchParams.getAll('scope').includes('repository:multi:pull'))).toBe(true);
    // One token serves the whole pull: it is cached per scope.
    expect(asked.filter((u) => u.searchParams.getAll('scope').includes('repository:multi:pull'))).toHaveLength(1);
  });

  it('pulls a two-platform index through the token flow', async () => {
    const r = await root(await dockerConfig(dir, 'good2', registry.host, 'bob', 'hunter2'));
    await r.puller.pull('default', `${registry.host}/multiarch:latest`, { platforms: [{ os: 'linux', architecture: 'arm64' }] });
    expectStoredLikeCtr(r.services, 'default', fixtureManifest('multiarch', 'arm64'), '127.0.0.1', 'multiarch');
  });

  it('fails clearly when the token server refuses anonymous access, storing nothing', async () => {
    const r = await root(join(dir, 'missing.json'));
    await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toThrow(/token server http:\/\/127\.0\.0\.1:\d+ refused anonymous access for repository:multi:pull/);
    expect(r.services.content.list('default')).toEqual([]);
  });
});

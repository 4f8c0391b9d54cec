import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest } from '../../helpers/registry.js';
import { scratchDir } from '../../helpers/scratch.js';
import { expectStoredLikeCtr, openPullRoot, type PullRoot } from './harness.js';
import { freePort, selfSignedCert, startSecuredRegistry, type TestRegistry } from './registries.js';

/** A TLS registry on loopback with a self-signed certificate, configured through hosts.toml. */
describe('PullService: TLS and hosts.toml', () => {
  let dir: string;
  let cert: { certificate: string; key: string };
  let registry: TestRegistry;
  beforeAll(async () => {
    dir = await scratchDir('tls-');
    cert = await selfSignedCert(dir);
    registry = await startSecuredRegistry(dir, { tls: cert }, ['multi']);
  });
  afterAll(async () => registry?.stop());

  /** A fresh root whose certs.d holds `hosts` for the registry. */
  const withHosts = async (name: string, hosts?: string): Promise<PullRoot> => {
    const hostsDir = join(dir, name);
    if (hosts !== undefined) {
      await mkdir(join(hostsDir, registry.host), { recursive: true });
      await writeFile(join(hostsDir, registry.host, 'hosts.toml'), hosts);
    }
    return openPullRoot({ hostsDir });
  };
  const pullAndCheck = async (r: PullRoot): Promise<void> => {
    try {
      await r.puller.pull('default', `${registry.host}/multi:latest`);
      expectStoredLikeCtr(r.services, 'default', fixtureManifest('multi'), '127.0.0.1', 'multi');
    } finally {
      await r.dispose();
    }
  };

  it('refuses an untrusted certificate (no plain-HTTP fallback for a TLS server)', async () => {
    const r = await withHosts('none');
    try {
      await expect(r.puller.pull('default', `${registry.host}/multi:latest`)).rejects.toThrow(/https:\/\/127\.0\.0\.1:\d+\/v2\/multi\/manifests\/latest: self[- ]signed certificate/);
      expect(r.services.content.list('default')).toEqual([]);
    } finally {
      await r.dispose();
    }
  });

  it('trusts the CA named in hosts.toml', async () => {
    await pullAndCheck(await withHosts('ca', `server = "https://${registry.host}"\nca = "${cert.certificate}"\n`));
  });

  it('skips verification when hosts.toml says skip_verify', async () => {
    await pullAndCheck(await withHosts('skip', `server = "https://${registry.host}"\nskip_verify = true\n`));
  });

  it('falls back from an unreachable mirror to the server', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await pullAndCheck(
      await withHosts('mirror', `server = "https://${registry.host}"\nca = "${cert.certificate}"\n\n[host."http://${dead}"]\n  capabilities = ["pull", "resolve"]\n`),
    );
  });
});

import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runOk } from '../../helpers/exec.js';
import { registryFixtures, type FixtureImageName } from '../../helpers/registry.js';
import { freePort, registryConfig, spawnRegistry, type RegistrySecurity } from '../../setup/registry.js';

export { freePort, type RegistrySecurity };

/**
 * docker-registry instances with authentication, for the pull tests. Their storage is filled by
 * copying fixture images from the global fixture registry through an unauthenticated registry
 * on the same storage directory, which is then stopped.
 */
export interface TestRegistry {
  host: string;
  stop(): Promise<void>;
}

/** A TCP connection succeeding means the registry listens (any scheme, any auth). */
async function waitListening(host: string, proc: ChildProcess): Promise<boolean> {
  const [ip = '', port] = host.split(':');
  for (let i = 0; i < 200 && proc.exitCode === null && proc.signalCode === null; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(Number(port), ip, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return true;
    await sleep(50);
  }
  return false;
}

async function start(dir: string, name: string, storage: string, security: RegistrySecurity): Promise<TestRegistry> {
  const host = `127.0.0.1:${await freePort()}`;
  const file = join(dir, `${name}.yml`);
  const logPath = join(dir, `${name}.log`);
  await writeFile(file, registryConfig(storage, host, security));
  const { proc, stop } = spawnRegistry(file, logPath);
  if (!(await waitListening(host, proc))) {
    await stop();
    throw new Error(`registry ${name} did not start:\n${await readFile(logPath, 'utf8')}`);
  }
  return { host, stop };
}

/** Starts a registry with authentication and/or TLS serving copies of `images`. */
export async function startSecuredRegistry(dir: string, security: RegistrySecurity, images: readonly FixtureImageName[]): Promise<TestRegistry> {
  const storage = join(dir, 'storage');
  const loader = await start(dir, 'loader', storage, {});
  try {
    const from = registryFixtures().host;
    for (const name of images) {
      await runOk('skopeo', ['copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false',
        `docker://${from}/${name}:latest`, `docker://${loader.host}/${name}:latest`], { timeoutMs: 120_000 });
    }
  } finally {
    await loader.stop();
  }
  return start(dir, 'secured', storage, security);
}

/** A self-signed certificate for 127.0.0.1 (the registry's TLS identity and its own CA). */
export async function selfSignedCert(dir: string): Promise<{ certificate: string; key: string }> {
  const certificate = join(dir, 'registry.crt');
  const key = join(dir, 'registry.key');
  await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2', '-keyout', key, '-out', certificate]);
  return { certificate, key };
}

export function htpasswdAuth(path: string): string {
  return `auth:
  htpasswd:
    realm: berth-test
    path: ${path}
`;
}

export function tokenAuth(realm: string, service: string, issuer: string, rootCertBundle: string): string {
  return `auth:
  token:
    realm: ${realm}
    service: ${service}
    issuer: ${issuer}
    rootcertbundle: ${rootCertBundle}
`;
}

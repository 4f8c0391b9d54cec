import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runOk } from '../helpers/exec.js';
import { waitPidGone } from '../helpers/cleanup.js';
import type { Descriptor } from '../helpers/registry.js';

export interface RunningRegistry {
  host: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** A port that was free a moment ago; the registry fails to bind if someone took it since. */
export function freePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** What a registry adds to the plain config: an `auth:` section, TLS files. */
export interface RegistrySecurity {
  auth?: string;
  tls?: { certificate: string; key: string };
}

/** docker-registry's config: storage on disk, listening on host, with optional auth and TLS. */
export function registryConfig(storage: string, host: string, security: RegistrySecurity = {}): string {
  const tls = security.tls ? `  tls:\n    certificate: ${security.tls.certificate}\n    key: ${security.tls.key}\n` : '';
  return `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: ${host}
${tls}${security.auth ?? ''}`;
}

async function waitHttpOk(url: string, proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  return false;
}

/** Runs Debian's docker-registry on a config file, logging to logPath; stop() ends it by PID. */
export function spawnRegistry(config: string, logPath: string): { proc: ChildProcess; stop(): Promise<void> } {
  const log = openSync(logPath, 'a');
  const proc = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  closeSync(log);
  const stop = async (): Promise<void> => {
    if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    if (!(await waitPidGone(proc.pid, 5_000))) proc.kill('SIGKILL');
    await waitPidGone(proc.pid, 5_000);
  };
  return { proc, stop };
}

async function startOnce(dir: string): Promise<RunningRegistry | undefined> {
  const host = `127.0.0.1:${await freePort()}`;
  const config = join(dir, 'config.yml');
  const logPath = join(dir, 'registry.log');
  await writeFile(config, registryConfig(join(dir, 'storage'), host));
  const { proc, stop } = spawnRegistry(config, logPath);
  if (await waitHttpOk(`http://${host}/v2/`, proc, 10_000)) return { host, proc, stop };
  await stop();
  process.stderr.write(`registry on ${host} did not come up:\n${await readFile(logPath, 'utf8')}\n`);
  return undefined;
}

/** Starts docker-registry with its config and storage in `dir`, retrying if the port was taken. */
export async function startRegistry(dir: string): Promise<RunningRegistry> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const reg = await startOnce(dir);
    if (reg) return reg;
  }
  throw new Error(`docker-registry did not start; see ${join(dir, 'registry.log')}`);
}

/**
 * Pushes an OCI layout's "latest" to the registry, all platforms. Without `format` the bytes are
 * pushed as built and any digest change is refused; "v2s2" converts to a Docker schema 2
 * manifest (same config and layer blobs, Docker media types).
 */
export async function pushLayout(layoutDir: string, ref: string, format?: 'v2s2'): Promise<void> {
  const how = format ? ['--format', format] : ['--all', '--preserve-digests'];
  await runOk('skopeo', ['copy', '--quiet', ...how, '--dest-tls-verify=false', `oci:${layoutDir}:latest`, `docker://${ref}`], {
    timeoutMs: 120_000,
  });
}

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** The Docker schema 2 manifest the registry serves for repo:tag, with its descriptor. */
export async function fetchDockerManifest(
  host: string,
  repo: string,
  tag: string,
): Promise<{ descriptor: Descriptor; manifest: { config: Descriptor; layers: Descriptor[] } }> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { headers: { Accept: DOCKER_MANIFEST } });
  const body = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`GET manifest ${repo}:${tag}: HTTP ${res.status} ${body.toString()}`);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const manifest = JSON.parse(body.toString('utf8')) as { mediaType: string; config: Descriptor; layers: Descriptor[] };
  if (manifest.mediaType !== DOCKER_MANIFEST) throw new Error(`${repo}:${tag} is ${manifest.mediaType}, not Docker schema 2`);
  return { descriptor: { mediaType: DOCKER_MANIFEST, digest, size: body.length }, manifest };
}

import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeNamespaceCgroups } from '../helpers/cgroups.js';
import { useBerthd } from '../helpers/berthd.js';
import { uniqueName } from '../helpers/ctr.js';
import { run, runOk, type RunResult } from '../helpers/exec.js';
import { fixtureImage, fixtureManifest, registryFixtures } from '../helpers/registry.js';
import { scratchDir } from '../helpers/scratch.js';
import { htpasswdAuth, startSecuredRegistry, tokenAuth, type TestRegistry } from '../integration/pull/registries.js';
import { startTokenServer, type TokenServer } from '../integration/pull/token-server.js';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));

/** A failure is one "berth: ..." line on stderr and exit code 1, never a stack trace. */
function expectOneLineError(r: RunResult, message: RegExp): void {
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^berth: \S.*\n$/);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** The lines push prints per blob and manifest: "<kind> <digest>: <status>". */
function statuses(stderr: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of stderr.matchAll(/^(layer|config|manifest|index) (sha256:[0-9a-f]{64}): (pushed|exists)$/gm)) out.set(`${m[1]} ${m[2]}`, m[3] ?? '');
  return out;
}

/** A docker config.json directory (for DOCKER_CONFIG) holding one login. */
async function dockerConfigDir(parent: string, host: string, user: string, password: string): Promise<string> {
  const dir = join(parent, `docker-${user}-${password}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return dir;
}

interface Inspected {
  Digest: string;
  Layers: string[];
}

/** What skopeo, an independent client, sees in the registry. */
async function skopeoInspect(ref: string, creds?: string): Promise<{ inspected: Inspected; rawDigest: string }> {
  const auth = creds ? ['--creds', creds] : [];
  const inspected = JSON.parse((await runOk('skopeo', ['inspect', '--tls-verify=false', ...auth, `docker://${ref}`])).stdout) as Inspected;
  const raw = await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', ...auth, `docker://${ref}`]);
  return { inspected, rawDigest: `sha256:${createHash('sha256').update(raw.stdout.replace(/\n$/, '')).digest('hex')}` };
}

describe('berth push', () => {
  const daemon = useBerthd();
  const ns = uniqueName('push');
  const busybox = (): string => fixtureImage('busybox').ref;
  let scratch = '';

  const berth = (args: string[], opts: { namespace?: string; dockerConfig?: string } = {}): Promise<RunResult> =>
    run(BERTH, ['--address', daemon().address, '-n', opts.namespace ?? ns, ...args], {
      timeoutMs: 120_000,
      // No login unless the test gives one: the CLI reads $DOCKER_CONFIG/config.json.
      env: { ...process.env, DOCKER_CONFIG: opts.dockerConfig ?? join(scratch, 'no-docker-config') },
    });

  beforeAll(async () => {
    scratch = await scratchDir('push-');
    for (const ref of [busybox(), fixtureImage('multiarch').ref]) {
      const pulled = await berth(['pull', ref]);
      expect(pulled.code, pulled.stderr).toBe(0);
    }
  });

  describe('to the plain registry', () => {
    const repo = uniqueName('pushed');
    const dest = (): string => `${registryFixtures().host}/${repo}:v1`;

    it('pushes every blob and the manifest under a new name; skopeo sees the same image', async () => {
      const r = await berth(['push', dest(), busybox()]);
      expect(r.code, r.stderr).toBe(0);
      const fixture = fixtureImage('busybox');
      const manifest = fixtureManifest('busybox');
      expect(r.stdout).toBe(`${dest()}: ${fixture.target.digest}\n`);
      const want = new Map([
        [`config ${manifest.config.digest}`, 'pushed'],
        ...manifest.layers.map((l): [string, string] => [`layer ${l.digest}`, 'pushed']),
        [`manifest ${manifest.digest}`, 'pushed'],
      ]);
      expect(statuses(r.stderr)).toEqual(want);

      const { inspected, rawDigest } = await skopeoInspect(dest());
      expect(inspected.Digest).toBe(fixture.target.digest);
      expect(rawDigest).toBe(fixture.target.digest);
      expect(inspected.Layers).toEqual(manifest.layers.map((l) => l.digest));
    });

    it('reports every blob as existing when pushed again (--plain-http, --json)', async () => {
      const r = await berth(['push', '--plain-http', '--json', dest(), busybox()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { name: string; target: { digest: string }; pushed: Array<{ kind: string; status: string }> };
      expect(out.name).toBe(dest());
      expect(out.target.digest).toBe(fixtureImage('busybox').target.digest);
      expect(out.pushed.length).toBe(fixtureManifest('busybox').layers.length + 2);
      expect(out.pushed.every((p) => p.status === 'exists')).toBe(true);
    });

    it('is pulled back by berthd into another namespace with the same digest, ready to run', async () => {
      const other = uniqueName('push-back');
      try {
        const r = await berth(['pull', dest()], { namespace: other });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(`${dest()}: ${fixtureImage('busybox').target.digest}\n`);
        const ran = await berth(['run', '--rm', dest(), 'echo', 'round-trip'], { namespace: other });
        expect(ran.stdout).toBe('round-trip\n');
      } finally {
        // The container's cgroups live under a directory named after its namespace.
        expect(await removeNamespaceCgroups(other)).toEqual([]);
      }
    });

    it('pushes a tagged image under its own name', async () => {
      const tagged = `${registryFixtures().host}/${repo}:tagged`;
      expect((await berth(['images', 'tag', busybox(), tagged])).code).toBe(0);
      const r = await berth(['push', tagged]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${tagged}: ${fixtureImage('busybox').target.digest}\n`);
      // The blobs are there already; the manifest goes up under the new tag.
      const manifest = fixtureManifest('busybox');
      expect(statuses(r.stderr)).toEqual(new Map([
        [`config ${manifest.config.digest}`, 'exists'],
        ...manifest.layers.map((l): [string, string] => [`layer ${l.digest}`, 'exists']),
        [`manifest ${manifest.digest}`, 'pushed'],
      ]));
      expect((await skopeoInspect(tagged)).inspected.Digest).toBe(fixtureImage('busybox').target.digest);
    });
  });

  describe('an index pulled for one platform', () => {
    const host = (): string => registryFixtures().host;
    const amd64 = (): string => fixtureManifest('multiarch', 'amd64').digest;
    const arm64 = (): string => fixtureManifest('multiarch', 'arm64').digest;

    it('pushes one platform with --platform: the tag names that manifest', async () => {
      const dest = `${host()}/${uniqueName('one-platform')}:v1`;
      const r = await berth(['push', '--platform', 'linux/amd64', dest, fixtureImage('multiarch').ref]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${dest}: ${amd64()}\n`);
      expect(statuses(r.stderr).get(`manifest ${amd64()}`)).toBe('pushed');
      expect((await skopeoInspect(dest)).rawDigest).toBe(amd64());
    });

    it('skips the platform it lacks, and the registry then refuses the index, with a hint', async () => {
      const dest = `${host()}/${uniqueName('partial')}:v1`;
      const r = await berth(['push', dest, fixtureImage('multiarch').ref]);
      expect(r.stderr).toContain(`manifest ${arm64()} (linux/arm64): skipped, not in the local store\n`);
      expect(statuses(r.stderr).get(`manifest ${amd64()}`)).toBe('pushed');
      const last = r.stderr.trimEnd().split('\n').pop() ?? '';
      expect(r.code).toBe(1);
      expect(last).toMatch(/^berth: push index sha256:[0-9a-f]{64} to 127\.0\.0\.1:\d+\/partial-[0-9a-f]+: HTTP 400 MANIFEST_BLOB_UNKNOWN/);
      expect(last).toContain('pull with --all-platforms, or push one platform with --platform');
    });

    it('pushes the whole index, children first, once every platform is pulled', async () => {
      const everything = uniqueName('push-all');
      const pulled = await berth(['pull', '--all-platforms', fixtureImage('multiarch').ref], { namespace: everything });
      expect(pulled.code, pulled.stderr).toBe(0);
      const dest = `${host()}/${uniqueName('whole')}:v1`;
      const r = await berth(['push', '--all-platforms', dest, fixtureImage('multiarch').ref], { namespace: everything });
      expect(r.code, r.stderr).toBe(0);
      const index = fixtureImage('multiarch').target.digest;
      expect(r.stdout).toBe(`${dest}: ${index}\n`);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.slice(-3)).toEqual([`manifest ${amd64()}: pushed`, `manifest ${arm64()}: pushed`, `index ${index}: pushed`]);
      expect((await skopeoInspect(dest)).rawDigest).toBe(index);
    });

    it('refuses up front with --all-platforms', async () => {
      const r = await berth(['push', '--all-platforms', `${host()}/${uniqueName('all')}:v1`, fixtureImage('multiarch').ref]);
      expectOneLineError(r, new RegExp(`the local store lacks ${arm64()} \\(linux/arm64\\)`));
    });
  });

  it('fails with one line and exit code 1 for an image that is not there', async () => {
    const r = await berth(['push', `${registryFixtures().host}/${uniqueName('nothing')}:v1`]);
    expectOneLineError(r, /image ".*nothing-[0-9a-f]+:v1" not found in namespace/);
    const bad = await berth(['push', 'Not A Reference']);
    expectOneLineError(bad, /invalid/);
  });

  describe('upload locations (a scripted registry)', () => {
    interface Upload {
      server: 'registry' | 'storage';
      path: string;
      query: URLSearchParams;
      authorization: string | undefined;
      contentType: string | undefined;
      digest: string;
      size: number;
    }
    const uploads: Upload[] = [];
    const servers: Server[] = [];
    let registryHost = '';
    let storageHost = '';

    /** Records a PUT of a blob and answers 201 Created. */
    const receive = (server: Upload['server'], req: IncomingMessage, res: ServerResponse): void => {
      const hash = createHash('sha256');
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        uploads.push({ server, path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, contentType: req.headers['content-type'], digest: `sha256:${hash.digest('hex')}`, size });
        res.writeHead(201).end();
      });
    };

    let posts = 0;
    /**
     * Basic auth for alice:s3cret. The first upload gets a relative Location with a query of
     * its own; the others an absolute one on another host (object storage).
     */
    const registry = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`) {
        req.resume();
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="scripted"' }).end();
        return;
      }
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.method === 'HEAD') res.writeHead(404).end();
      else if (req.method === 'POST' && path === '/v2/scripted/blobs/uploads/') {
        posts++;
        const location = posts === 1 ? '/v2/scripted/up/1?state=abc%3D%3D' : `http://${storageHost}/bucket/up?sig=xyz`;
        res.writeHead(202, { Location: location, 'Content-Length': '0' }).end();
      } else if (req.method === 'PUT') receive('registry', req, res);
      else res.writeHead(405).end();
    };

    const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => {
      const server = createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `127.0.0.1:${(server.address() as AddressInfo).port}`;
    };

    beforeAll(async () => {
      registryHost = await listen(registry);
      storageHost = await listen((req, res) => receive('storage', req, res));
    });
    afterAll(async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    });

    it('resolves relative Locations, keeps their query, and sends no credentials to another host', async () => {
      const dest = `${registryHost}/scripted:v1`;
      const r = await berth(['push', dest, busybox()], { dockerConfig: await dockerConfigDir(scratch, registryHost, 'alice', 's3cret') });
      expect(r.code, r.stderr).toBe(0);
      const manifest = fixtureManifest('busybox');
      const blobs = [manifest.config, ...manifest.layers];
      const blobUploads = uploads.filter((u) => !u.path.includes('/manifests/'));
      expect(blobUploads.map((u) => u.digest).sort()).toEqual(blobs.map((b) => b.digest).sort());
      for (const u of blobUploads) {
        // The registry checks what it got against the digest parameter.
        expect(u.query.get('digest')).toBe(u.digest);
        expect(u.size).toBe(blobs.find((b) => b.digest === u.digest)?.size);
        expect(u.contentType).toBe('application/octet-stream');
      }
      const onRegistry = blobUploads.filter((u) => u.server === 'registry');
      expect(onRegistry).toHaveLength(1);
      expect(onRegistry[0]?.path).toBe('/v2/scripted/up/1');
      expect(onRegistry[0]?.query.get('state')).toBe('abc==');
      expect(onRegistry[0]?.authorization).toMatch(/^Basic /);
      const onStorage = blobUploads.filter((u) => u.server === 'storage');
      expect(onStorage.length).toBe(blobs.length - 1);
      for (const u of onStorage) {
        expect(u.query.get('sig')).toBe('xyz');
        expect(u.authorization).toBeUndefined();
      }
      const put = uploads.find((u) => u.path === '/v2/scripted/manifests/v1');
      expect(put?.digest).toBe(manifest.digest);
      expect(put?.contentType).toBe(manifest.mediaType);
    });
  });

  describe('to a registry with basic auth', () => {
    let dir = '';
    let registry: TestRegistry | undefined;
    beforeAll(async () => {
      dir = await scratchDir('push-basic-');
      await writeFile(join(dir, 'htpasswd'), (await runOk('htpasswd', ['-Bbn', 'alice', 's3cret'])).stdout);
      registry = await startSecuredRegistry(dir, { auth: htpasswdAuth(join(dir, 'htpasswd')) }, []);
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('pushes with the login from config.json', async () => {
      const host = registry?.host ?? '';
      const dest = `${host}/secured/busybox:v1`;
      const r = await berth(['push', dest, busybox()], { dockerConfig: await dockerConfigDir(dir, host, 'alice', 's3cret') });
      expect(r.code, r.stderr).toBe(0);
      expect([...statuses(r.stderr).values()].every((s) => s === 'pushed')).toBe(true);
      const { inspected } = await skopeoInspect(dest, 'alice:s3cret');
      expect(inspected.Digest).toBe(fixtureImage('busybox').target.digest);
    });

    it('fails clearly without a login or with a wrong password', async () => {
      const host = registry?.host ?? '';
      const none = await berth(['push', `${host}/secured/other:v1`, busybox()]);
      expectOneLineError(none, new RegExp(`push \\w+ sha256:[0-9a-f]{64} to ${host}/secured/other: ${host} requires a login \\(basic auth\\)`));
      const wrong = await berth(['push', `${host}/secured/other:v1`, busybox()], { dockerConfig: await dockerConfigDir(dir, host, 'alice', 'wrong') });
      expectOneLineError(wrong, /refused the credentials for user "alice"/);
    });
  });

  describe('to a registry with token auth', () => {
    let dir = '';
    let tokens: TokenServer | undefined;
    let registry: TestRegistry | undefined;
    beforeAll(async () => {
      dir = await scratchDir('push-token-');
      tokens = await startTokenServer(dir, { bob: 'hunter2', carol: 'reader' }, { carol: ['pull'] });
      registry = await startSecuredRegistry(dir, { auth: tokenAuth(tokens.realm, tokens.service, tokens.issuer, tokens.certPath) }, []);
    });
    afterAll(async () => {
      await registry?.stop();
      await tokens?.close();
    });

    it('asks for a pull,push token and pushes with it', async () => {
      const host = registry?.host ?? '';
      const dest = `${host}/team/busybox:v1`;
      const r = await berth(['push', dest, busybox()], { dockerConfig: await dockerConfigDir(dir, host, 'bob', 'hunter2') });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${dest}: ${fixtureImage('busybox').target.digest}\n`);
      const scopes = (tokens?.requests ?? []).flatMap((q) => new URL(q.url, 'http://t').searchParams.getAll('scope'));
      expect(scopes).toContain('repository:team/busybox:pull,push');
      const { inspected } = await skopeoInspect(dest, 'bob:hunter2');
      expect(inspected.Digest).toBe(fixtureImage('busybox').target.digest);
    });

    it('fails clearly when the token does not grant push', async () => {
      const host = registry?.host ?? '';
      const r = await berth(['push', `${host}/team/denied:v1`, busybox()], { dockerConfig: await dockerConfigDir(dir, host, 'carol', 'reader') });
      expectOneLineError(r, new RegExp(`to ${host}/team/denied: ${host} denied repository:team/denied:pull,push to user "carol".*insufficient_scope`));
      const check = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'bob:hunter2', `docker://${host}/team/denied:v1`]);
      expect(check.code).not.toBe(0);
    });
  });
});

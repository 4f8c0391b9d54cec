import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBerthd, type Berthd } from '../../helpers/berthd.js';
import { ctr } from '../../helpers/ctr.js';
import { run } from '../../helpers/exec.js';
import { apiClient } from '../../helpers/grpc.js';
import { scratchDir } from '../../helpers/scratch.js';
import { destroyTree } from '../../helpers/cleanup.js';

const BERTHD = fileURLToPath(new URL('../../../bin/berthd', import.meta.url));
const CONTENT = 'containerd.services.content.v1.Content';

describe('berthd process', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await scratchDir('life-');
  });
  afterAll(async () => {
    await destroyTree(dir);
  });

  it('creates a 0660 socket, a 0700 root and a traverse-only state dir, replacing a stale socket file', async () => {
    const base = await scratchDir('perm-');
    const address = join(base, 'state', 'berth.sock');
    await run('mkdir', ['-p', join(base, 'state')]);
    await writeFile(address, 'stale');
    const config = join(base, 'berthd.toml');
    await writeFile(config, `root = "${join(base, 'root')}"\nstate = "${join(base, 'state')}"\n[grpc]\naddress = "${address}"\n[debug]\nlevel = "warn"\n`);
    const proc = spawn(BERTHD, ['--config', config], { stdio: 'ignore' });
    try {
      const deadline = Date.now() + 20_000;
      while ((await ctr(address, ['version'], { timeoutMs: 3000 })).code !== 0) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await stat(address)).mode & 0o777).toBe(0o660);
      expect((await stat(join(base, 'root'))).mode & 0o777).toBe(0o700);
      expect((await stat(join(base, 'state'))).mode & 0o777).toBe(0o711);
    } finally {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
      await destroyTree(base);
    }
  });

  it.each([
    ['an unknown flag', ['--bogus'], /Unknown option '--bogus'/],
    ['a bad log level', ['--log-level', 'loud'], /log level "loud" is not one of/],
    ['a missing config file', ['--config', '/nonexistent/berthd.toml'], /cannot read config \/nonexistent\/berthd.toml/],
    ['a state dir too long for unix sockets', ['--state', `/tmp/${'x'.repeat(60)}`], /--state path is too long for the unix sockets .* at most 40 bytes/],
  ])('exits 2 with a one-line error for %s', async (_what, args, message) => {
    const r = await run(BERTHD, args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('rejects a config value of the wrong type', async () => {
    const config = join(dir, 'bad.toml');
    await writeFile(config, 'root = 7\n');
    const r = await run(BERTHD, ['--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"root" must be a non-empty string/);
  });

  describe('on SIGTERM', () => {
    let daemon: Berthd;
    beforeAll(async () => {
      daemon = await startBerthd();
    });
    afterAll(async () => daemon.stop());

    it('answers the gRPC health check and introspection', async () => {
      const api = apiClient(daemon.address);
      try {
        expect(await api.unary('grpc.health.v1.Health/Check', {}, null)).toEqual({ status: 'SERVING' });
        const server = await api.unary('containerd.services.introspection.v1.Introspection/Server', {}, null);
        expect(server.uuid).toMatch(/^[0-9a-f-]{36}$/);
        const plugins = (await api.unary('containerd.services.introspection.v1.Introspection/Plugins', { filters: ['type==io.containerd.snapshotter.v1'] }, null))
          .plugins as { id: string }[];
        expect(plugins.map((p) => p.id)).toEqual(['overlayfs']);
      } finally {
        api.close();
      }
    });

    it('lets an in-flight write finish, then exits 0', async () => {
      const api = apiClient(daemon.address);
      try {
        const data = Buffer.from('drained');
        const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
        const w = api.bidi(`${CONTENT}/Write`);
        w.write({ action: 'WRITE', ref: 'drain', data });
        await w.read();
        const exited = once(daemon.proc, 'exit');
        daemon.proc.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 200));
        w.write({ action: 'COMMIT', ref: 'drain', expected: digest });
        expect((await w.read()).digest).toBe(digest);
        await w.end();
        const [code] = (await exited) as [number | null];
        expect(code).toBe(0);
      } finally {
        api.close();
      }
    });
  });
});

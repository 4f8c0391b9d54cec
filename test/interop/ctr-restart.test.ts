import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBerthd } from '../helpers/berthd.js';
import { configWithShim, SHIMS } from '../helpers/shims.js';
import { removeNamespaceCgroups } from '../helpers/cgroups.js';
import { ctr, uniqueName } from '../helpers/ctr.js';
import { mountsUnder, processesUnder } from '../helpers/cleanup.js';
import { fixtureImage } from '../helpers/registry.js';

const COUNT = 20;

async function eventually(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Tasks outlive berthd: kill -9, exits while it is down, restart, and nothing is lost. */
describe.each(SHIMS)('tasks across a berthd kill -9 with %s', (_name, shimBinary) => {
  const daemon = useBerthd({ args: ['--config', configWithShim(shimBinary)] });
  const ns = uniqueName('restart');
  const ids = Array.from({ length: COUNT }, (_, i) => `c${i}`);
  const c = (args: string[]): ReturnType<typeof ctr> => ctr(daemon().address, args, { namespace: ns, timeoutMs: 60_000 });

  beforeAll(async () => {
    expect((await c(['images', 'pull', '--plain-http', fixtureImage('busybox').ref])).code).toBe(0);
  });
  afterAll(async () => {
    expect(await removeNamespaceCgroups(ns)).toEqual([]);
  });

  it('keeps 18 running and reports the true exit codes of 2 that exited while it was down', async () => {
    const image = fixtureImage('busybox').ref;
    // c0 and c1 exit with 7 and 9 when their trigger file appears, which the test creates while berthd is down.
    const runs = ids.map((id, i) => {
      const cmd = i < 2 ? ['sh', '-c', `while [ ! -e /tmp/go ]; do sleep 0.05; done; exit ${i === 0 ? 7 : 9}`] : ['sleep', '300'];
      return c(['run', '-d', image, id, ...cmd]);
    });
    for (const r of await Promise.all(runs)) expect(r.code, r.stderr).toBe(0);
    await eventually(async () => ((await c(['task', 'ls'])).stdout.match(/RUNNING/g) ?? []).length === COUNT);

    await daemon().kill9();
    for (const id of ['c0', 'c1']) {
      const r = await ctr(daemon().address, ['task', 'ls'], { namespace: ns, timeoutMs: 2_000 });
      expect(r.code).not.toBe(0); // berthd is really down
      const bundleRootfs = join(daemon().state, 'tasks', ns, id, 'rootfs');
      writeFileSync(join(bundleRootfs, 'tmp', 'go'), '');
    }
    await new Promise((r) => setTimeout(r, 500));
    await daemon().restart();

    const listed = (await c(['task', 'ls'])).stdout;
    expect((listed.match(/RUNNING/g) ?? []).length).toBe(COUNT - 2);
    expect(listed).toMatch(/^c0\s+\d+\s+STOPPED/m);
    expect(listed).toMatch(/^c1\s+\d+\s+STOPPED/m);
    expect((await c(['task', 'delete', 'c0'])).stderr).toMatch(/exit code 7/);
    expect((await c(['task', 'delete', 'c1'])).stderr).toMatch(/exit code 9/);
    expect((await c(['task', 'exec', '--exec-id', 'after', 'c5', 'echo', 'alive'])).stdout).toBe('alive\n');

    for (const id of ids.slice(2)) expect((await c(['task', 'kill', '-s', 'SIGKILL', id])).code).toBe(0);
    await eventually(async () => !(await c(['task', 'ls'])).stdout.includes('RUNNING'));
    for (const id of ids.slice(2)) expect((await c(['task', 'delete', id])).code).toBe(0);
    for (const id of ids) expect((await c(['containers', 'rm', id])).code).toBe(0);
    expect(await mountsUnder(join(daemon().state, 'tasks'))).toEqual([]);
    // Only berthd may remain: every shim exits with its last task.
    const serving = async (): Promise<number[]> => {
      const pids = (await processesUnder(daemon().state)).filter((pid) => pid !== daemon().proc.pid);
      const cmdlines = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
      return pids.filter((_, i) => cmdlines[i] !== '');
    };
    await eventually(async () => (await serving()).length === 0, 15_000);
  });
});

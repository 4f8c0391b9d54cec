import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeNamespaceCgroups } from '../helpers/cgroups.js';
import { useBerthd } from '../helpers/berthd.js';
import { configWithShim, SHIMS } from '../helpers/shims.js';
import { ctr, uniqueName } from '../helpers/ctr.js';
import { fixtureImage } from '../helpers/registry.js';
import { run } from '../helpers/exec.js';
import { watchEvents } from '../helpers/events.js';

describe.each(SHIMS)('ctr run against berthd with %s', (_name, shimBinary) => {
  const daemon = useBerthd({ args: ['--config', configWithShim(shimBinary)] });
  const ns = uniqueName('run');
  const image = (): string => fixtureImage('busybox').ref;
  const c = (args: string[], timeoutMs = 60_000): ReturnType<typeof ctr> => ctr(daemon().address, args, { namespace: ns, timeoutMs });

  beforeAll(async () => {
    // Scratch dirs are 0700; a user-namespaced container's root must traverse down to its bundle,
    // as it can through /run on a real host.
    for (const dir of [dirname(daemon().dir), daemon().dir]) await chmod(dir, 0o711);
    expect((await c(['images', 'pull', '--plain-http', image()])).code).toBe(0);
  });
  afterAll(async () => {
    expect(await removeNamespaceCgroups(ns)).toEqual([]);
  });

  it('prints the output of `echo hi` and removes the container', async () => {
    const id = uniqueName('echo');
    const r = await c(['run', '--rm', image(), id, 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(0);
    expect((await c(['containers', 'ls', '-q'])).stdout).not.toContain(id);
    expect((await c(['task', 'ls'])).stdout).not.toContain(id);
  });

  it('uses the runtime binary that the runtime options name', async () => {
    const keeper = uniqueName('keeper');
    // A running task keeps the group's shim up, so the next task joins it rather than starting one.
    expect((await c(['run', '-d', image(), keeper, 'sleep', '300'])).code).toBe(0);
    try {
      const viaRunc = await c(['run', '--rm', '--runc-binary', '/usr/sbin/runc', image(), uniqueName('runc'), 'echo', 'via-runc']);
      expect(viaRunc.stdout).toBe('via-runc\n');
      const missingId = uniqueName('missing');
      const missing = await c(['run', '--rm', '--runc-binary', '/nonexistent/runtime', image(), missingId, 'true']);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('/nonexistent/runtime');
      // containerd's shim, one per task, is shut down after the failed create, as containerd does:
      // its socket (sha256 of daemon address, namespace and id) goes with it.
      const socket = `/run/containerd/s/${createHash('sha256').update(`${daemon().address}/${ns}/${missingId}`).digest('hex')}`;
      if (_name !== 'berth-shim') expect(existsSync(socket)).toBe(false);
    } finally {
      await c(['task', 'kill', '-s', 'SIGKILL', keeper]);
      await c(['task', 'delete', keeper]).then(async (d) => (d.code === 0 ? d : (await new Promise((res) => setTimeout(res, 300)), c(['task', 'delete', keeper]))));
      await c(['containers', 'rm', keeper]);
    }
  });

  it('passes the exit status through', async () => {
    const r = await c(['run', '--rm', image(), uniqueName('exit'), 'sh', '-c', 'exit 3']);
    expect(r.code).toBe(3);
  });

  it('applies --env, --cwd, --read-only, --net-host and --mount', async () => {
    const r = await c([
      'run', '--rm', '--env', 'GREETING=hello', '--cwd', '/etc', '--read-only', '--net-host',
      '--mount', 'type=bind,src=/etc/debian_version,dst=/host-version,options=rbind:ro',
      image(), uniqueName('flags'), 'sh', '-c',
      'echo "$GREETING $(pwd)"; touch /x 2>&1 | grep -q "Read-only" && echo ro; cat /host-version >/dev/null && echo mounted; ls /sys/class/net | grep -qv "^lo$" && echo hostnet',
    ]);
    expect(r.stdout.split('\n')).toEqual(['hello /etc', 'ro', 'mounted', 'hostnet', '']);
  });

  it('applies --memory-limit, --cpus and --cap-drop', async () => {
    const id = uniqueName('limits');
    const r = await c(['run', '-d', '--memory-limit', '67108864', '--cpus', '0.5', '--cap-drop', 'CAP_NET_RAW', image(), id, 'sleep', '300']);
    expect(r.code, r.stderr).toBe(0);
    try {
      // ctr puts the task in cgroup /<namespace>/<id> on this v1 host.
      expect((await readFile(`/sys/fs/cgroup/memory/${ns}/${id}/memory.limit_in_bytes`, 'utf8')).trim()).toBe('67108864');
      expect((await readFile(`/sys/fs/cgroup/cpu/${ns}/${id}/cpu.cfs_quota_us`, 'utf8')).trim()).toBe('50000');
      const status = await c(['task', 'exec', '--exec-id', 'caps', id, 'grep', 'CapEff', '/proc/1/status']);
      const eff = BigInt(`0x${status.stdout.trim().split(/\s+/)[1] ?? '0'}`);
      expect(eff & (1n << 13n)).toBe(0n); // CAP_NET_RAW is bit 13
      expect(eff & 1n).toBe(1n); // CAP_CHOWN stays
    } finally {
      await c(['task', 'kill', '-s', 'SIGKILL', id]);
      await c(['task', 'delete', id]).then(async (d) => (d.code === 0 ? d : (await new Promise((res) => setTimeout(res, 300)), c(['task', 'delete', id]))));
      await c(['containers', 'rm', id]);
    }
  });

  it('drives a detached task through ls, exec, ps, pause, resume, metrics, kill and delete', async () => {
    const id = uniqueName('detached');
    expect((await c(['run', '-d', image(), id, 'sleep', '300'])).code).toBe(0);
    expect((await c(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
    const exec = await c(['task', 'exec', '--exec-id', 'e1', id, 'echo', 'from-exec']);
    expect(exec.stdout).toBe('from-exec\n');
    expect((await c(['task', 'ps', id])).stdout).toMatch(/^\d+/m);
    expect((await c(['task', 'pause', id])).code).toBe(0);
    expect((await c(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+PAUSED`));
    expect((await c(['task', 'resume', id])).code).toBe(0);
    expect((await c(['task', 'metrics', id])).stdout).toMatch(/memory\.usage_in_bytes\s+\d+/);
    expect((await c(['task', 'kill', '-s', 'SIGKILL', id])).code).toBe(0);
    const deadline = Date.now() + 10_000;
    while (!(await c(['task', 'ls'])).stdout.match(new RegExp(`${id}\\s+\\d+\\s+STOPPED`))) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await c(['task', 'delete', id])).code).toBe(0);
    expect((await c(['containers', 'info', id])).stdout).toContain(`"ID": "${id}"`);
    expect((await c(['containers', 'rm', id])).code).toBe(0);
    expect((await c(['containers', 'ls', '-q'])).stdout).not.toContain(id);
  });

  it('refuses to delete a running task', async () => {
    const id = uniqueName('busy');
    expect((await c(['run', '-d', image(), id, 'sleep', '300'])).code).toBe(0);
    const r = await c(['task', 'delete', id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/must be stopped/);
    expect((await c(['task', 'kill', '-s', 'SIGKILL', id])).code).toBe(0);
    const del = await c(['task', 'delete', id]);
    if (del.code !== 0) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await c(['task', 'delete', id])).code).toBe(0);
    }
    expect((await c(['containers', 'rm', id])).code).toBe(0);
  });

  it('applies --seccomp and --uidmap/--gidmap', async () => {
    const seccomp = await c(['run', '--rm', '--seccomp', image(), uniqueName('seccomp'), 'grep', 'Seccomp:', '/proc/self/status']);
    expect(seccomp.stdout).toMatch(/Seccomp:\s+2/);
    const userns = await c([
      'run', '--rm', '--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536',
      image(), uniqueName('userns'), 'cat', '/proc/self/uid_map',
    ]);
    expect(userns.stdout.trim().split(/\s+/), userns.stderr).toEqual(['0', '100000', '65536']);
  });

  it('runs with a terminal under a pty', async () => {
    const id = uniqueName('tty');
    // script(1) gives ctr a pty of its own, as an interactive user would have.
    const r = await run('script', ['-qec', `/usr/bin/ctr --address ${daemon().address} -n ${ns} run --rm -t ${image()} ${id} sh -c 'tty; echo tty-ok'`, '/dev/null'], {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain('tty-ok');
  });

  it('shows task events on ctr events', async () => {
    const events = await watchEvents(daemon().address);
    try {
      expect((await c(['run', '--rm', image(), uniqueName('events'), 'true'])).code).toBe(0);
      // The last event of `run --rm`: the watching ctr may print it a moment after run returned.
      await events.waitFor('/containers/delete');
    } finally {
      await events.stop();
    }
    for (const topic of ['/containers/create', '/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete', '/containers/delete']) {
      expect(events.output()).toContain(topic);
    }
  });

  it('reports the tasks of a shim killed with SIGKILL as stopped and keeps serving', async () => {
    const id = uniqueName('orphan');
    expect((await c(['run', '-d', image(), id, 'sleep', '300'])).code).toBe(0);
    const address = (await readFile(join(daemon().state, 'tasks', ns, id, 'shim.address'), 'utf8')).replace('unix://', '');
    const shimPid = Number(
      (await run('sh', ['-c', `ss -xlpn | grep -F '${address}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2`])).stdout.trim(),
    );
    expect(shimPid).toBeGreaterThan(1);
    process.kill(shimPid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (!(await c(['task', 'ls'])).stdout.match(new RegExp(`${id}\\s+\\d+\\s+STOPPED`))) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await c(['task', 'delete', id])).code).toBe(0);
    expect((await c(['containers', 'rm', id])).code).toBe(0);
    expect((await c(['version'])).code).toBe(0);
    // containerd's shim keeps one socket per task outside our state dir: gone with its shim.
    if (_name !== 'berth-shim') expect(existsSync(address)).toBe(false);
  });
});

/** berth-shim's groups: one shim per namespace outside CRI, a session of its own, gone after its last task. */
describe('group shims', () => {
  const daemon = useBerthd();
  const image = (): string => fixtureImage('busybox').ref;
  const parentOf = async (pid: number): Promise<{ ppid: number; sid: number }> => {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return { ppid: Number(fields[1]), sid: Number(fields[3]) };
  };

  it('gives a new namespace its own shim, outside berthd, which exits after its last task', async () => {
    const other = uniqueName('group');
    const ids = [uniqueName('first'), uniqueName('second')];
    expect((await ctr(daemon().address, ['images', 'pull', '--plain-http', image()], { namespace: other })).code).toBe(0);
    for (const id of ids) expect((await ctr(daemon().address, ['run', '-d', image(), id, 'sleep', '300'], { namespace: other })).code).toBe(0);
    let shim = 0;
    try {
      const listed = (await ctr(daemon().address, ['task', 'ls'], { namespace: other })).stdout;
      const pids = ids.map((id) => Number(new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(listed)?.[1]));
      const parents = await Promise.all(pids.map(parentOf));
      shim = parents[0]!.ppid;
      expect(parents[1]!.ppid).toBe(shim); // one shim for the namespace's tasks
      expect((await readFile(`/proc/${shim}/cmdline`, 'utf8')).split('\0')[0]).toMatch(/berth-shim$/);
      const own = await parentOf(shim);
      expect(own.sid).toBe(shim); // its own session: a signal to berthd's group never reaches it
      expect(own.ppid).not.toBe(daemon().proc.pid);
    } finally {
      for (const id of ids) {
        await ctr(daemon().address, ['task', 'kill', '-s', 'SIGKILL', id], { namespace: other });
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const id of ids) {
        await ctr(daemon().address, ['task', 'delete', id], { namespace: other });
        await ctr(daemon().address, ['containers', 'rm', id], { namespace: other });
      }
      expect(await removeNamespaceCgroups(other)).toEqual([]);
    }
    // Gone, or a zombie of whichever subreaper adopted it: either way it has exited.
    const alive = async (): Promise<boolean> => (await readFile(`/proc/${shim}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.[0] !== 'Z' && existsSync(`/proc/${shim}`);
    const deadline = Date.now() + 20_000;
    while (await alive()) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

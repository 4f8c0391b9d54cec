// berth-runtime lifecycle as runc defines it: create -> start -> kill -> delete, run, exec, pause,
// ps, list, the state JSON, and hooks. Real containers from a busybox rootfs.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Harness, RUNTIME, type Json, oneLine } from './harness.js';

const h = new Harness('life');
afterAll(() => {
  expect(h.cleanup()).toEqual([]);
});

const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
};

describe('create / start / state / kill / delete', () => {
  it('walks creating -> created -> running -> stopped and cleans up on delete', () => {
    const id = h.id();
    const hookOut = path.join(h.dir, `${id}.hook`);
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/sleep', '1000'];
      // The createRuntime hook sees the container while it is being created.
      c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `${RUNTIME} --root ${h.root} state ${id} > ${hookOut}`] }] };
    });
    const pidFile = path.join(h.dir, `${id}.pid`);
    const cr = h.rt(['create', '--bundle', b, '--pid-file', pidFile, id]);
    expect(cr.stderr).toBe('');
    expect(cr.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(hookOut, 'utf8')).status).toBe('creating');

    const created = h.state(id);
    expect(created).toMatchObject({ ociVersion: '1.1.0', id, status: 'created', bundle: b, rootfs: path.join(b, 'rootfs') });
    expect(created.pid).toBe(Number(fs.readFileSync(pidFile, 'utf8')));
    expect(alive(created.pid)).toBe(true);
    expect(typeof created.created).toBe('string');

    expect(h.rt(['start', id]).code).toBe(0);
    expect(h.state(id).status).toBe('running');
    // The init is now the sleep, not the runtime.
    expect(fs.readFileSync(`/proc/${created.pid}/cmdline`, 'utf8')).toBe('/bin/sleep\u00001000\u0000');
    const again = h.rt(['start', id]);
    expect(again.code).not.toBe(0);
    expect(oneLine(again.stderr)).toBe(true);

    const del = h.rt(['delete', id]);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/not stopped: running/);

    expect(h.rt(['kill', id, 'KILL']).code).toBe(0);
    for (let i = 0; i < 200 && h.state(id).status !== 'stopped'; i++) spawnSyncSleep(10);
    expect(h.state(id)).toMatchObject({ status: 'stopped', pid: 0 });
    const k2 = h.rt(['kill', id, 'TERM']);
    expect(k2.code).not.toBe(0);
    expect(k2.stderr).toMatch(/not running/);

    expect(h.rt(['delete', id]).code).toBe(0);
    expect(h.leftovers(id)).toEqual([]);
    const st = h.rt(['state', id]);
    expect(st.code).not.toBe(0);
    expect(st.stderr).toMatch(/does not exist/);
  });

  it('keeps the config as created: a link to its own bundle file, a copy of one others may write', () => {
    const ino = (p: string): number => fs.statSync(p).ino;
    const own = h.id();
    const ownBundle = h.bundle(own);
    expect(h.rt(['create', '--bundle', ownBundle, own]).code).toBe(0);
    expect(ino(path.join(h.root, own, 'config.json'))).toBe(ino(path.join(ownBundle, 'config.json')));

    const shared = h.id();
    const sharedBundle = h.bundle(shared, (c) => (c.annotations = { made: 'before' }));
    fs.chmodSync(path.join(sharedBundle, 'config.json'), 0o664);
    expect(h.rt(['create', '--bundle', sharedBundle, shared]).code).toBe(0);
    expect(ino(path.join(h.root, shared, 'config.json'))).not.toBe(ino(path.join(sharedBundle, 'config.json')));
    // An edit of the bundle after create does not reach the container's config.
    const edited = JSON.parse(fs.readFileSync(path.join(sharedBundle, 'config.json'), 'utf8')) as Json;
    edited.annotations = { made: 'after' };
    fs.writeFileSync(path.join(sharedBundle, 'config.json'), JSON.stringify(edited));
    expect(h.state(shared).annotations).toEqual({ made: 'before' });
    for (const id of [own, shared]) expect(h.rt(['delete', '--force', id]).code).toBe(0);
  });

  it('deletes a created container without --force and a running one with it', () => {
    const a = h.id();
    expect(h.rt(['create', '--bundle', h.bundle(a, (c) => (c.process.args = ['/bin/sleep', '100'])), a]).code).toBe(0);
    const pid = h.state(a).pid as number;
    expect(h.rt(['delete', a]).code).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(h.leftovers(a)).toEqual([]);

    const b = h.id();
    expect(h.rt(['run', '--detach', '--bundle', h.bundle(b, (c) => (c.process.args = ['/bin/sleep', '100'])), b]).code).toBe(0);
    const pb = h.state(b).pid as number;
    expect(h.state(b).status).toBe('running');
    expect(h.rt(['delete', '--force', b]).code).toBe(0);
    expect(alive(pb)).toBe(false);
    expect(h.leftovers(b)).toEqual([]);
  });

  it('without a pid namespace, delete also kills what the init left behind', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: Json) => n.type !== 'pid');
      c.process.args = ['/bin/sh', '-c', 'sleep 100 & echo $! > /tmp/bg'];
      c.root.readonly = false;
    });
    expect(h.rt(['run', '-d', '--bundle', b, id]).code).toBe(0);
    const bgFile = path.join(b, 'rootfs/tmp/bg');
    for (let i = 0; i < 1000 && !fs.existsSync(bgFile); i++) spawnSyncSleep(10);
    for (let i = 0; i < 1000 && h.state(id).status !== 'stopped'; i++) spawnSyncSleep(10);
    const bg = Number(fs.readFileSync(bgFile, 'utf8'));
    expect(alive(bg)).toBe(true);
    expect(h.rt(['delete', id]).code).toBe(0);
    for (let i = 0; i < 1000 && alive(bg); i++) spawnSyncSleep(10);
    expect(alive(bg)).toBe(false);
    expect(h.leftovers(id)).toEqual([]);
  });

  it('kill takes signal names and numbers, and --all reaches every process', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/sh', '-c', 'trap "echo got-usr1 > /tmp/usr1" USR1; sleep 100 & sleep 100 & touch /tmp/ready; while :; do sleep 0.05; done'];
      c.root.readonly = false;
    });
    expect(h.rt(['run', '-d', '--bundle', b, id]).code).toBe(0);
    // A pid namespace's init ignores signals it has no handler for: wait for the trap.
    for (let i = 0; i < 1000 && !fs.existsSync(path.join(b, 'rootfs/tmp/ready')); i++) spawnSyncSleep(10);
    expect(h.rt(['kill', id, 'SIGUSR1']).code).toBe(0);
    const f = path.join(b, 'rootfs/tmp/usr1');
    for (let i = 0; i < 1000 && !fs.existsSync(f); i++) spawnSyncSleep(10);
    expect(fs.readFileSync(f, 'utf8')).toBe('got-usr1\n');
    expect(h.rt(['kill', id, 'NOPE']).code).not.toBe(0);
    const ps = JSON.parse(h.rt(['ps', '--format', 'json', id]).stdout) as number[];
    expect(ps.length).toBeGreaterThanOrEqual(3);
    expect(ps).toContain(h.state(id).pid);
    expect(h.rt(['kill', '--all', id, '9']).code).toBe(0);
    for (let i = 0; i < 1000 && ps.some(alive); i++) spawnSyncSleep(10);
    expect(ps.filter(alive)).toEqual([]);
    expect(h.state(id).status).toBe('stopped');
    expect(h.rt(['delete', id]).code).toBe(0);
    expect(h.leftovers(id)).toEqual([]);
  });
});

function spawnSyncSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('run', () => {
  it('returns the container exit status and removes the container', () => {
    const r = h.sh('echo hello; exit 3');
    expect(r.stdout).toBe('hello\n');
    expect(r.code).toBe(3);
    expect(h.leftovers(r.id)).toEqual([]);
  });

  it('reports a missing executable at create time', () => {
    const r = h.run(['/bin/does-not-exist']);
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/does-not-exist/);
    expect(h.leftovers(r.id)).toEqual([]);
  });
});

/** The cgroup of pid in each hierarchy but the named systemd one, from /proc/<pid>/cgroup. */
function cgroupsOf(pid: number): string[] {
  return fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .filter((line) => !line.includes(':name=systemd:'))
    .map((line) => line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
}

describe('cgroup membership', () => {
  // The init (and an exec's child) writes itself into each v1 hierarchy's `tasks` file through
  // fds the runtime opened; with a user namespace the kernel still checks the opener.
  it.each([false, true])('the created init and an exec are in the container cgroup in every hierarchy (user namespace: %s)', (userns) => {
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/sleep', '1000'];
      if (userns) {
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      }
    });
    expect(h.rt(['create', '--bundle', b, id]).code).toBe(0);
    const init = h.state(id).pid as number;
    const inits = cgroupsOf(init);
    expect(inits.length).toBeGreaterThan(1);
    expect(inits.every((cg) => cg === `/${id}`)).toBe(true);
    expect(h.rt(['start', id]).code).toBe(0);
    const pidFile = path.join(h.dir, `${id}.exec.pid`);
    expect(h.rt(['exec', '--detach', '--pid-file', pidFile, id, '/bin/sleep', '1000']).code).toBe(0);
    expect(cgroupsOf(Number(fs.readFileSync(pidFile, 'utf8')))).toEqual(inits);
    expect(h.rt(['delete', '--force', id]).code).toBe(0);
  });
});

describe('exec, pause, ps, list', () => {
  it('exec joins every namespace and the cgroup of the container', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => {
      c.process.args = ['/bin/sleep', '1000'];
      c.process.env.push('FROM_CONFIG=1');
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    });
    expect(h.rt(['run', '-d', '--bundle', b, id]).code).toBe(0);
    const pid = h.state(id).pid as number;
    const ns = ['user', 'pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup'];
    const script = `for n in ${ns.join(' ')}; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup; echo pid=$$; pwd; id -u; echo $FROM_CONFIG $EXTRA`;
    const r = h.rt(['exec', '--cwd', '/tmp', '--env', 'EXTRA=2', id, '/bin/sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    for (const [i, n] of ns.entries()) expect(lines[i]).toBe(fs.readlinkSync(`/proc/${pid}/ns/${n}`));
    const initCg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim();
    // The exec'd process sees cgroups through the container's cgroup namespace, like its init.
    const execCg = lines.slice(ns.length, ns.length + initCg.split('\n').length).join('\n');
    expect(execCg).toMatch(/memory:\/$/m);
    expect(execCg).toMatch(/pids:\/$/m);
    const procs = fs.readFileSync(`/sys/fs/cgroup/pids/${id}/cgroup.procs`, 'utf8');
    expect(procs).toContain(String(pid));
    expect(lines.slice(-4)).toEqual([expect.stringMatching(/^pid=\d+$/), '/tmp', '0', '1 2']);
    expect(Number(lines.at(-4)!.slice(4))).toBeGreaterThan(1);

    const u = h.rt(['exec', '--user', '1000:1000', '--additional-gids', '27', id, '/bin/sh', '-c', 'id -u; id -g; id -G']);
    expect(u.stdout).toBe('1000\n1000\n1000 27\n');
    // CVE-2022-24769: --cap adds to the effective set, never to the inheritable one.
    const caps = h.rt(['exec', '--cap', 'CAP_SYS_ADMIN', id, '/bin/grep', '-E', 'CapInh|CapEff', '/proc/self/status']);
    expect(caps.stdout).toMatch(/CapInh:\s+0000000000000000/);
    expect(BigInt(`0x${caps.stdout.match(/CapEff:\s+(\w+)/)![1]}`) & (1n << 21n)).toBe(1n << 21n);
    const pf = path.join(h.dir, `${id}.json`);
    fs.writeFileSync(pf, JSON.stringify({ args: ['/bin/sh', '-c', 'echo $A; pwd'], env: ['A=from-process-file'], cwd: '/etc', user: { uid: 0, gid: 0 } }));
    const p = h.rt(['exec', '--process', pf, id]);
    expect(p.stdout).toBe('from-process-file\n/etc\n');
    expect(h.rt(['exec', id, '/bin/sh', '-c', 'exit 7']).code).toBe(7);
    const bad = h.rt(['exec', id, '/nope']);
    expect(bad.code).not.toBe(0);
    expect(oneLine(bad.stderr)).toBe(true);

    expect(h.rt(['pause', id]).code).toBe(0);
    expect(h.state(id).status).toBe('paused');
    expect(fs.readFileSync(`/sys/fs/cgroup/freezer/${id}/freezer.state`, 'utf8').trim()).toBe('FROZEN');
    expect(h.rt(['exec', id, '/bin/true']).code).not.toBe(0);
    expect(h.rt(['resume', id]).code).toBe(0);
    expect(h.state(id).status).toBe('running');

    const list = JSON.parse(h.rt(['list', '--format', 'json']).stdout) as { id: string; status: string }[];
    expect(list.find((c) => c.id === id)?.status).toBe('running');
    expect(h.rt(['list', '-q']).stdout.split('\n')).toContain(id);
    const table = h.rt(['ps', id]).stdout.split('\n');
    expect(table[0]).toMatch(/PID/);
    expect(table.some((l) => l.includes('sleep 1000'))).toBe(true);

    expect(h.rt(['delete', '--force', id]).code).toBe(0);
    expect(h.leftovers(id)).toEqual([]);
  });

  it('update --resources changes the limits of a running container', () => {
    const id = h.id();
    expect(h.rt(['run', '-d', '--bundle', h.bundle(id, (c) => (c.process.args = ['/bin/sleep', '1000'])), id]).code).toBe(0);
    const res = path.join(h.dir, `${id}.res.json`);
    fs.writeFileSync(res, JSON.stringify({ memory: { limit: 48 * 1024 * 1024 }, pids: { limit: 33 } }));
    expect(h.rt(['update', '--resources', res, id]).stderr).toBe('');
    expect(fs.readFileSync(`/sys/fs/cgroup/memory/${id}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(48 * 1024 * 1024));
    expect(h.rt(['exec', id, '/bin/cat', '/sys/fs/cgroup/pids/pids.max']).stdout).toBe('33\n');
    expect(h.rt(['delete', '-f', id]).code).toBe(0);
  });

  it('exec --detach writes the pid file and the process runs in the container', () => {
    const id = h.id();
    expect(h.rt(['run', '-d', '--bundle', h.bundle(id, (c) => (c.process.args = ['/bin/sleep', '1000'])), id]).code).toBe(0);
    const pf = path.join(h.dir, `${id}.exec.pid`);
    expect(h.rt(['exec', '-d', '--pid-file', pf, id, '/bin/sleep', '999']).code).toBe(0);
    const pid = Number(fs.readFileSync(pf, 'utf8'));
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('/bin/sleep\u0000999\u0000');
    expect(fs.readlinkSync(`/proc/${pid}/ns/pid`)).toBe(fs.readlinkSync(`/proc/${h.state(id).pid}/ns/pid`));
    expect(h.rt(['delete', '--force', id]).code).toBe(0);
    expect(alive(pid)).toBe(false);
  });
});

describe('hooks', () => {
  it('runs all six kinds in order with the state on stdin', () => {
    const id = h.id();
    const log = path.join(h.dir, `${id}-hooks`);
    fs.mkdirSync(log);
    const host = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${log}/${name}; ls ${log} | wc -l > ${log}/${name}.n`] });
    // startContainer runs inside the container: its path and output are container paths.
    const inside = { path: '/bin/sh', args: ['sh', '-c', 'cat > /hooks/startContainer; ls /hooks | wc -l > /hooks/startContainer.n'] };
    const b = h.bundle(id, (c) => {
      // The container's process must not inherit anything from the hooks' plumbing.
      c.process.args = ['/bin/sh', '-c', 'grep SigIgn /proc/self/status > /hooks/sigign.tmp; mv /hooks/sigign.tmp /hooks/sigign; sleep 100'];
      c.annotations = { 'org.example.key': 'value' };
      c.mounts.push({ destination: '/hooks', type: 'bind', source: log, options: ['rbind', 'rw'] });
      c.hooks = {
        prestart: [host('prestart')],
        createRuntime: [host('createRuntime')],
        createContainer: [host('createContainer')],
        startContainer: [inside],
        poststart: [host('poststart')],
        poststop: [host('poststop')],
      };
    });
    expect(h.rt(['create', '--bundle', b, id]).stderr).toBe('');
    expect(h.rt(['start', id]).code).toBe(0);
    for (let i = 0; i < 1000 && !fs.existsSync(`${log}/sigign`); i++) spawnSyncSleep(10);
    expect(fs.readFileSync(`${log}/sigign`, 'utf8')).toMatch(/^SigIgn:\s+0000000000000000$/m);
    expect(h.rt(['delete', '--force', id]).code).toBe(0);
    const order = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
    const pos = order.map((n) => Number(fs.readFileSync(`${log}/${n}.n`, 'utf8').trim()));
    expect(pos).toEqual([...pos].sort((a, b2) => a - b2));
    const st = JSON.parse(fs.readFileSync(`${log}/createRuntime`, 'utf8'));
    expect(st).toMatchObject({ id, status: 'creating', bundle: b, annotations: { 'org.example.key': 'value' } });
    expect(st.pid).toBeGreaterThan(1);
    expect(JSON.parse(fs.readFileSync(`${log}/poststart`, 'utf8')).status).toBe('running');
    expect(JSON.parse(fs.readFileSync(`${log}/poststop`, 'utf8')).status).toBe('stopped');
    expect(h.leftovers(id)).toEqual([]);
  });

  it('a hook that outlives its timeout fails create', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => (c.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] }));
    const r = h.rt(['create', '--bundle', b, id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/createRuntime hook `\/bin\/sleep` timed out after 1s/);
    expect(h.leftovers(id)).toEqual([]);
  });

  it('a failing prestart hook fails create and leaves nothing', () => {
    const id = h.id();
    const b = h.bundle(id, (c) => (c.hooks = { prestart: [{ path: '/bin/false' }] }));
    const r = h.rt(['create', '--bundle', b, id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/prestart hook `\/bin\/false` failed/);
    expect(h.leftovers(id)).toEqual([]);
  });
});

describe('terminal proxy', () => {
  it('run and exec in the foreground proxy a terminal without a console socket', () => {
    const r = h.run(['/bin/sh', '-c', 'tty; stty size'], (c) => {
      c.process.terminal = true;
      c.process.consoleSize = { height: 24, width: 80 };
    });
    expect(r.code).toBe(0);
    expect(r.stdout.split(/\r?\n/)).toEqual(['/dev/pts/0', '24 80', '']);
    const id = h.id();
    expect(h.rt(['run', '-d', '--bundle', h.bundle(id, (c) => (c.process.args = ['/bin/sleep', '100'])), id]).code).toBe(0);
    const e = h.rt(['exec', '-t', id, '/bin/sh', '-c', 'tty; exit 5']);
    expect(e.code).toBe(5);
    expect(e.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
    expect(h.rt(['exec', '-t', '-d', id, '/bin/true']).stderr).toMatch(/needs --console-socket/);
    expect(h.rt(['delete', '-f', id]).code).toBe(0);
  });
});

describe('console socket', () => {
  it('sends the pty master over the socket for run and exec --tty', async () => {
    const id = h.id();
    const sock = path.join(h.dir, `${id}.sock`);
    const recv = spawn('python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'console_recv.py'), sock, '2']);
    let out = '';
    recv.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number>((res) => recv.on('exit', (c) => res(c ?? -1)));
    for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
    const b = h.bundle(id, (c) => {
      c.process.terminal = true;
      c.process.consoleSize = { height: 30, width: 100 };
      c.process.args = ['/bin/sh', '-c', 'tty; stty size; sleep 100'];
    });
    const r = h.rt(['run', '-d', '--console-socket', sock, '--bundle', b, id]);
    expect(r.stderr).toBe('');
    const e = h.rt(['exec', '-t', '--console-socket', sock, id, '/bin/sh', '-c', 'echo exec-$(tty)']);
    expect(e.code).toBe(0);
    expect(await done).toBe(0);
    // The two ptys' output may interleave, line by line.
    const lines = out.split(/\r?\n/);
    expect(lines).toContain('/dev/pts/0');
    expect(lines).toContain('30 100');
    expect(lines).toContain('exec-/dev/pts/1');
    expect(h.rt(['delete', '--force', id]).code).toBe(0);
  });
});

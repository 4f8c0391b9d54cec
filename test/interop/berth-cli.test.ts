import { spawn } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBerthd } from '../helpers/berthd.js';
import { removeNamespaceCgroups } from '../helpers/cgroups.js';
import { uniqueName } from '../helpers/ctr.js';
import { run, type RunResult } from '../helpers/exec.js';
import { fixtureImage } from '../helpers/registry.js';
import { scratchDir } from '../helpers/scratch.js';
import { configWithShim, SHIMS } from '../helpers/shims.js';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const RUNC_SHIM = SHIMS[1][1];

/** A failure is one "berth: ..." line on stderr, never a stack trace. */
function expectOneLineError(r: RunResult): void {
  expect(r.code, r.stdout + r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(/^berth: \S.*\n$/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('berth CLI against berthd', () => {
  const daemon = useBerthd();
  const ns = uniqueName('cli');
  const importNs = uniqueName('cli-import');
  const image = (): string => fixtureImage('busybox').ref;
  let scratch = '';

  const berth = (args: string[], opts: { namespace?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> =>
    run(BERTH, ['--address', daemon().address, '-n', opts.namespace ?? ns, ...args], { input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });

  beforeAll(async () => {
    scratch = await scratchDir('cli-');
    const pulled = await berth(['pull', image()]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toBe(`${image()}: ${fixtureImage('busybox').target.digest}\n`);
    // Not a terminal: one plain line per layer status, no bars.
    expect(pulled.stderr).toMatch(/^[0-9a-f]{12} (downloading|exists|unpacked)/m);
    expect(pulled.stderr).not.toContain('\u001b[');
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
    expect(await removeNamespaceCgroups(ns)).toEqual([]);
    expect(await removeNamespaceCgroups(importNs)).toEqual([]);
  });

  it('runs `echo hi` and removes the container', async () => {
    const id = uniqueName('echo');
    const r = await berth(['run', '--rm', '--name', id, image(), 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(0);
    expect((await berth(['ps', '-q'])).stdout).not.toContain(id);
    expect((await berth(['snapshots', 'ls', '--json'])).stdout).not.toContain(id);
  });

  it("exits with the container's exit code", async () => {
    const r = await berth(['run', '--rm', image(), 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(3);
  });

  it('keeps draining output after its reader has gone, so the container still exits and is removed', async () => {
    const id = uniqueName('pipe');
    const berthCmd = [BERTH, '--address', daemon().address, '-n', ns, 'run', '--rm', '--name', id, image()].join(' ');
    // Far more than a pipe buffer holds, most of it written after head has exited. The shell
    // returns once both sides of the pipe have.
    const r = await run('sh', ['-c', `${berthCmd} seq 1 200000 | head -1`]);
    expect(r.stdout.split('\n')[0]).toBe('1');
    expect((await berth(['ps', '-q'])).stdout).not.toContain(id);
  });

  it('applies -e, -v, --user, --net and passes stdin with -i', async () => {
    const r = await berth(
      ['run', '--rm', '-i', '-e', 'GREETING=hello', '-v', `${scratch}:/host:ro`, '--mount', `type=bind,src=${scratch},dst=/rw`,
        '--user', 'nobody', '--net', 'none', image(),
        'sh', '-c', 'echo "$GREETING $(id -u) $(ls /sys/class/net)"; touch /host/x 2>/dev/null || echo ro; grep -q " /rw .* rw," /proc/mounts && echo rw; cat'],
      { input: 'from-stdin\n' },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello 65534 lo\nro\nrw\nfrom-stdin\n');
    expect(r.code).toBe(0);
  });

  it('applies --memory, --cpus and --net host', async () => {
    const id = uniqueName('limits');
    expect((await berth(['run', '-d', '--name', id, '--memory', '64m', '--cpus', '0.5', '--net', 'host', image(), 'sleep', '300'])).code).toBe(0);
    try {
      const interfaces = (await berth(['exec', id, 'ls', '/sys/class/net'])).stdout.split('\n').filter(Boolean);
      expect(interfaces.length).toBeGreaterThan(1);
      // berth sets cgroupsPath /<namespace>/<id>, like ctr; this host is cgroup v1.
      const memory = await run('cat', [`/sys/fs/cgroup/memory/${ns}/${id}/memory.limit_in_bytes`]);
      expect(memory.stdout.trim()).toBe(String(64 * 1024 * 1024));
      const quota = await run('cat', [`/sys/fs/cgroup/cpu/${ns}/${id}/cpu.cfs_quota_us`]);
      expect(quota.stdout.trim()).toBe('50000');
    } finally {
      expect((await berth(['rm', '-f', id])).code).toBe(0);
    }
  });

  /** Runs berth under script(1), which gives it a terminal for stdin, stdout and stderr. */
  const onTerminal = (args: string[]): Promise<RunResult> =>
    run('script', ['-qec', [BERTH, '--address', daemon().address, '-n', ns, ...args].join(' '), '/dev/null'], { timeoutMs: 60_000 });

  it('gives -t a terminal, for run and exec', async () => {
    const r = await onTerminal(['run', '--rm', '-t', image(), 'sh', '-c', "'tty; exit 5'"]);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.code).toBe(5);

    const id = uniqueName('tty');
    expect((await berth(['run', '-d', '--name', id, image(), 'sleep', '300'])).code).toBe(0);
    try {
      const exec = await onTerminal(['exec', '-t', id, 'sh', '-c', "'tty; exit 6'"]);
      expect(exec.stdout).toMatch(/\/dev\/pts\/\d+/);
      expect(exec.code).toBe(6);
    } finally {
      expect((await berth(['rm', '-f', id])).code).toBe(0);
    }
  });

  it('draws progress bars when pulling on a terminal', async () => {
    const r = await onTerminal(['pull', image()]);
    expect(r.code).toBe(0);
    // cli-progress hides the cursor while drawing and shows the layer's short digest on its bar.
    expect(r.stdout).toContain('\u001b[?25l');
    expect(r.stdout).toContain(fixtureImage('busybox').manifests[0]?.layers[0]?.digest.slice(7, 19));
  });

  it('forwards SIGTERM to the container and exits with its status', async () => {
    const child = spawn(
      BERTH,
      ['--address', daemon().address, '-n', ns, 'run', '--rm', image(), 'sh', '-c', 'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.1; done'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out === 'ready\n' && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    });
    expect(await exited).toBe(9);
    expect(out).toBe('ready\ngot-term\n');
  });

  it('drives a detached container through ps, exec, kill, stop and rm', async () => {
    const id = uniqueName('detached');
    const started = await berth(['run', '-d', '--name', id, image(), 'sh', '-c', 'trap "exit 7" USR1; while true; do sleep 0.1; done']);
    expect(started.stdout).toBe(`${id}\n`);

    const ps = JSON.parse((await berth(['ps', '--json'])).stdout) as Array<{ id: string; status: string; pid: number }>;
    expect(ps.find((c) => c.id === id)).toMatchObject({ status: 'running', pid: expect.any(Number) });

    const exec = await berth(['exec', id, 'sh', '-c', 'echo from-exec; exit 4']);
    expect(exec.stdout).toBe('from-exec\n');
    expect(exec.code).toBe(4);

    expect((await berth(['rm', id])).stderr).toMatch(/is running/);
    expect((await berth(['kill', '-s', 'USR1', id])).code).toBe(0);
    expect((await berth(['stop', '--time', '30', id])).code).toBe(0);
    const stopped = JSON.parse((await berth(['ps', '--json'])).stdout) as Array<{ id: string; status: string; exitStatus: number }>;
    expect(stopped.find((c) => c.id === id)).toMatchObject({ status: 'stopped', exitStatus: 7 });

    expect((await berth(['rm', id])).code).toBe(0);
    expect((await berth(['ps', '-q'])).stdout).not.toContain(id);
  });

  it('stop escalates to SIGKILL after --time', async () => {
    const id = uniqueName('stubborn');
    // pid 1 ignores SIGTERM unless it installs a handler; sleep does not.
    expect((await berth(['run', '-d', '--name', id, image(), 'sleep', '300'])).code).toBe(0);
    expect((await berth(['stop', '--time', '1', id])).code).toBe(0);
    const ps = JSON.parse((await berth(['ps', '--json'])).stdout) as Array<{ id: string; exitStatus: number }>;
    expect(ps.find((c) => c.id === id)?.exitStatus).toBe(137);
    expect((await berth(['rm', id])).code).toBe(0);
  });

  it('lists, tags, inspects and removes images', async () => {
    const list = JSON.parse((await berth(['images', 'ls', '--json'])).stdout) as Array<{ name: string; digest: string; size: number }>;
    expect(list).toContainEqual(expect.objectContaining({ name: image(), digest: fixtureImage('busybox').target.digest }));

    expect((await berth(['images', 'tag', image(), 'example.com/tagged:v1'])).stdout).toBe('example.com/tagged:v1\n');
    expectOneLineError(await berth(['images', 'tag', image(), 'example.com/tagged:v1']));
    const inspect = JSON.parse((await berth(['images', 'inspect', 'example.com/tagged:v1'])).stdout) as {
      name: string;
      config: { rootfs: { diff_ids: string[] } };
    };
    expect(inspect.name).toBe('example.com/tagged:v1');
    expect(inspect.config.rootfs.diff_ids).toEqual(fixtureImage('busybox').manifests[0]?.layers.map((l) => l.diffId));

    expect((await berth(['images', 'rm', 'example.com/tagged:v1'])).code).toBe(0);
    expect((await berth(['images', 'ls', '-q'])).stdout).not.toContain('tagged');
  });

  it('exports an image and imports it into another namespace, ready to run', async () => {
    const archive = join(scratch, 'busybox.tar');
    expect((await berth(['images', 'export', archive, image()])).code).toBe(0);
    expect((await stat(archive)).size).toBeGreaterThan(0);
    const listing = await run('tar', ['-tf', archive]);
    expect(listing.stdout.split('\n')).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json']));

    const imported = await berth(['images', 'import', archive], { namespace: importNs });
    expect(imported.stderr).toBe('');
    expect(imported.stdout).toBe(`${image()}\n`);
    const r = await berth(['run', '--rm', image(), 'echo', 'imported'], { namespace: importNs });
    expect(r.stdout).toBe('imported\n');

    // Through a pipe: export to stdout, import from stdin.
    const prefix = `${BERTH} --address ${daemon().address}`;
    const piped = await run('sh', ['-c', `${prefix} -n ${ns} images export - ${image()} | ${prefix} -n ${importNs} images import -`]);
    expect(piped.stdout, piped.stderr).toBe(`${image()}\n`);

    // Without the OCI files it is a docker-archive (docker save's manifest.json), imported under
    // a docker schema 2 manifest berth writes itself.
    const unpacked = join(scratch, 'docker-archive');
    const dockerArchive = join(scratch, 'docker.tar');
    await mkdir(unpacked);
    expect((await run('tar', ['-xf', archive, '-C', unpacked])).code).toBe(0);
    await rm(join(unpacked, 'index.json'));
    await rm(join(unpacked, 'oci-layout'));
    expect((await run('tar', ['-cf', dockerArchive, '-C', unpacked, '.'])).code).toBe(0);
    const docker = await berth(['images', 'import', dockerArchive], { namespace: importNs });
    expect(docker.stdout, docker.stderr).toBe(`${image()}\n`);
    const inspect = JSON.parse((await berth(['images', 'inspect', image()], { namespace: importNs })).stdout) as { target: { media_type: string } };
    expect(inspect.target.media_type).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect((await berth(['run', '--rm', image(), 'echo', 'docker'], { namespace: importNs })).stdout).toBe('docker\n');
  });

  it('pulls, runs and exports a multi-platform image (an index) for this platform', async () => {
    const multi = fixtureImage('multiarch').ref;
    expect((await berth(['pull', '--json', multi])).code).toBe(0);
    const list = JSON.parse((await berth(['images', 'ls', '--json'])).stdout) as Array<{ name: string; platforms: string[] }>;
    expect(list.find((i) => i.name === multi)?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect((await berth(['run', '--rm', multi, 'echo', 'multi'])).stdout).toBe('multi\n');

    const archive = join(scratch, 'multi.tar');
    expect((await berth(['images', 'export', archive, multi])).code).toBe(0);
    expect((await berth(['images', 'import', archive], { namespace: importNs })).stdout).toBe(`${multi}\n`);
    expect((await berth(['run', '--rm', multi, 'echo', 'multi'], { namespace: importNs })).stdout).toBe('multi\n');
  });

  it('lists namespaces, content and snapshots, and describes the daemon', async () => {
    const namespaces = JSON.parse((await berth(['ns', 'ls', '--json'])).stdout) as Array<{ name: string }>;
    expect(namespaces.map((n) => n.name)).toContain(ns);

    const content = JSON.parse((await berth(['content', 'ls', '--json'])).stdout) as Array<{ digest: string }>;
    expect(content.map((c) => c.digest)).toContain(fixtureImage('busybox').target.digest);

    const snapshots = JSON.parse((await berth(['snapshots', 'ls', '--json'])).stdout) as Array<{ kind: string }>;
    expect(snapshots.some((s) => s.kind === 'COMMITTED')).toBe(true);

    const info = JSON.parse((await berth(['info', '--json'])).stdout) as { version: string; namespaces: string[] };
    expect(info.namespaces).toContain(ns);

    const version = JSON.parse((await berth(['version', '--json'])).stdout) as { client: { version: string }; server: { version: string } };
    expect(version.server.version).toBe(version.client.version);
    expect((await berth(['version'])).stdout).toMatch(/^Client:/);
  });

  it('streams events', async () => {
    const child = spawn(BERTH, ['--address', daemon().address, '-n', ns, 'events', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    try {
      // The subscription may start after the first container: run until one is seen.
      let seen: { topic: string; event: { container_id?: string } } | undefined;
      for (let attempt = 0; attempt < 20 && !seen; attempt++) {
        const id = uniqueName('ev');
        expect((await berth(['run', '--rm', '--name', id, image(), 'true'])).code).toBe(0);
        seen = out
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { topic: string; event: { container_id?: string } })
          .find((e) => e.topic === '/tasks/exit' && e.event.container_id === id);
      }
      expect(seen).toBeDefined();
    } finally {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    }
  });

  it('answers one bad input per subcommand with one line and a non-zero exit', async () => {
    const cases: string[][] = [
      ['pull', 'Not A Reference'],
      ['push', 'no-such-image'],
      ['images', 'ls', '--bogus'],
      ['images', 'rm', 'no-such-image'],
      ['images', 'tag', 'no-such-image', 'x:1'],
      ['images', 'inspect', 'no-such-image'],
      ['images', 'import', join(scratch, 'missing.tar')],
      ['images', 'export', join(scratch, 'out.tar'), 'no-such-image'],
      ['run', '--rm', 'no-such-image', 'true'],
      ['run', '--rm', '--memory', 'lots', image(), 'true'],
      ['run', '--rm', '--user', 'no-such-user', image(), 'true'],
      ['run', '--rm', '-v', '/no/such/dir:/x', image(), 'true'],
      ['run', '--rm', '--mount', 'type=tmpfs,dst=/x', image(), 'true'],
      ['run', '--rm', '--name', 'bad name', image(), 'true'],
      ['run', '--rm', '-d', image(), 'true'],
      ['run', '--net', 'bridge', image(), 'true'],
      ['run'],
      ['ps', 'extra-arg'],
      ['exec', 'no-such-container', 'true'],
      ['kill', 'no-such-container'],
      ['kill', '-s', 'SIGNOPE', 'no-such-container'],
      ['stop', '--time', 'soon', 'x'],
      ['stop', 'no-such-container'],
      ['rm', 'no-such-container'],
      ['snapshots', 'ls', '--snapshotter', 'nope'],
      ['content', 'ls', '--bogus'],
      ['ns', 'ls', '--bogus'],
      ['events', '--filter', 'topic=='],
      ['info', 'extra-arg'],
      ['version', 'extra-arg'],
      ['no-such-command'],
    ];
    // Independent of each other, so run side by side.
    const results = await Promise.all(cases.map((args) => berth(args)));
    results.forEach((r, i) => {
      expect(r.stderr, cases[i]?.join(' ')).toMatch(/^berth: \S.*\n$/);
      expectOneLineError(r);
    });
    const unreachable = await run(BERTH, ['--address', join(scratch, 'none.sock'), 'version']);
    expectOneLineError(unreachable);
    expect(unreachable.stderr).toContain('cannot connect to berthd');
    // A bad user leaves no container behind (it failed before the task existed, and --rm was given).
    expect((await berth(['ps', '-q'])).stdout).toBe('');
  });
});

// containerd's runc shim under berthd: the CLI's side of the stdio and terminal contract checked
// against the reference implementation of the other side.
describe('berth CLI against berthd driving containerd-shim-runc-v2', () => {
  const daemon = useBerthd({ args: ['--config', configWithShim(RUNC_SHIM)] });
  const ns = uniqueName('cli-runc');
  const image = (): string => fixtureImage('busybox').ref;
  const berth = (args: string[], input?: string): Promise<RunResult> =>
    run(BERTH, ['--address', daemon().address, '-n', ns, ...args], { input, timeoutMs: 60_000 });

  afterAll(async () => {
    expect(await removeNamespaceCgroups(ns)).toEqual([]);
  });

  it('pulls, runs, attaches stdin and a terminal, and passes exit codes through', async () => {
    expect((await berth(['pull', image()])).code).toBe(0);
    const hi = await berth(['run', '--rm', image(), 'echo', 'hi']);
    expect(hi.stderr).toBe('');
    expect(hi.stdout).toBe('hi\n');
    expect(hi.code).toBe(0);
    expect((await berth(['run', '--rm', image(), 'sh', '-c', 'exit 3'])).code).toBe(3);
    expect((await berth(['run', '--rm', '-i', image(), 'cat'], 'via-stdin\n')).stdout).toBe('via-stdin\n');
    const cmd = [BERTH, '--address', daemon().address, '-n', ns, 'run', '--rm', '-t', image(), 'sh', '-c', "'tty; exit 5'"].join(' ');
    const tty = await run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 60_000 });
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(tty.code).toBe(5);
    expect((await berth(['ps', '-q'])).stdout).toBe('');
  });
});

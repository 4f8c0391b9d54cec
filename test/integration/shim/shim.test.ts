import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killProcessesUnder, processesUnder, waitPidGone } from '../../helpers/cleanup.js';
import { decodeMessage, messageType } from '../../../services/server/protos.js';
import { Code, type TtrpcError } from '../../../services/ttrpc/index.js';
import { groupHash, groupKey } from '../../../services/runtime/shim-group.js';
import {
  CGROUP_PARENT,
  deleteViaBinary,
  EventSink,
  Fifos,
  makeBundle,
  NAMESPACE,
  removeTestCgroups,
  startShim,
  TaskClient,
  type ShimEnv,
} from './harness.js';

const SIGKILL = 9;
const RUNC = '/usr/sbin/runc';
/** Debian's runc and ours share runc's CLI; BERTH_SHIM_TEST_RUNTIMES (comma-separated) narrows the list. */
const RUNTIMES = (process.env.BERTH_SHIM_TEST_RUNTIMES ?? `${RUNC},${fileURLToPath(new URL('../../../bin/berth-runtime', import.meta.url))}`).split(',');

function processSpec(args: string[], terminal = false): Buffer {
  return Buffer.from(JSON.stringify({ args, cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 }, terminal }));
}

/** The thread count of process `pid`. */
function threads(pid: number): number {
  const m = /^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no thread count for ${pid}`);
  return Number(m[1]);
}

/** Polls until `pid` has `want` threads, for at most `timeoutMs`; returns the last count seen. */
async function threadsBecome(pid: number, want: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = threads(pid);
    if (n === want || Date.now() > deadline) return n;
    await sleep(20);
  }
}

async function rejection(p: Promise<unknown>): Promise<TtrpcError> {
  try {
    await p;
  } catch (e) {
    return e as TtrpcError;
  }
  throw new Error('call unexpectedly succeeded');
}

describe.each(RUNTIMES)('berth-shim with %s', (runtime) => {
  let dir: string;
  let env: ShimEnv;
  let sink: EventSink;
  const clients: TaskClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/berth-shim-it-');
    env = { stateDir: dir, eventsSocket: join(dir, 'events.sock'), runtime };
    sink = new EventSink(env.eventsSocket);
    await sink.start();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await sink.stop();
    // Shims name the state dir in their argv and containers are their descendants.
    await killProcessesUnder(dir);
    removeTestCgroups(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  async function connect(address: string): Promise<TaskClient> {
    const client = await TaskClient.connect(address);
    clients.push(client);
    return client;
  }

  /** Starts (or joins) the shim for a new bundle and creates the task with client FIFOs. */
  async function createTask(id: string, args: string[], annotations?: Record<string, string>) {
    const bundle = makeBundle(dir, id, { args, annotations });
    const address = await startShim(env, bundle, id);
    const client = await connect(address);
    const fifos = new Fifos(join(dir, 'fifo', id), id);
    const created = await client.call('Create', { id, bundle, stdin: fifos.stdin, stdout: fifos.stdout, stderr: fifos.stderr });
    return { bundle, address, client, fifos, pid: Number(created.pid) };
  }

  it('creates, starts and waits for a task; stdout and stderr go through the FIFOs', async () => {
    const t = await createTask('exit3', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(t.address).toMatch(new RegExp(`^unix://${dir}/s/[0-9a-f]{64}$`));
    expect(t.pid).toBeGreaterThan(0);
    // Wait may come before Start, as ctr sends it.
    const waited = t.client.call('Wait', { id: 'exit3' });
    expect(await t.client.call('Start', { id: 'exit3' })).toEqual({ pid: t.pid });
    expect((await waited).exit_status).toBe(3);
    // EOF on both FIFOs: the write ends were closed once the process exited.
    await Promise.all([t.fifos.stdoutEnded, t.fifos.stderrEnded]);
    expect(t.fifos.output('stdout')).toBe('out\n');
    expect(t.fifos.output('stderr')).toBe('err\n');

    const state = await t.client.call('State', { id: 'exit3' });
    expect(state).toMatchObject({ id: 'exit3', status: 'STOPPED', exit_status: 3, pid: t.pid, bundle: t.bundle });
    const exitFile = JSON.parse(readFileSync(join(t.bundle, 'exit-init.json'), 'utf8')) as { status: number; pid: number };
    expect(exitFile).toMatchObject({ status: 3, pid: t.pid });

    const deleted = await t.client.call('Delete', { id: 'exit3' });
    expect(deleted).toMatchObject({ pid: t.pid, exit_status: 3 });
    const exit = await sink.waitFor((e) => e.topic === '/tasks/exit' && e.event.container_id === 'exit3');
    expect(exit).toMatchObject({ typeUrl: 'containerd.events.TaskExit', namespace: 'shimtest' });
    expect(exit.event).toMatchObject({ id: 'exit3', pid: t.pid, exit_status: 3 });
    await sink.waitFor((e) => e.topic === '/tasks/delete' && e.event.container_id === 'exit3');
    const mine = sink.events.filter((e) => e.event.container_id === 'exit3');
    expect(mine.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    expect(await rejection(t.client.call('State', { id: 'exit3' }))).toMatchObject({ grpcCode: Code.NOT_FOUND });
  });

  it('runs execs, updates resources, pauses, resumes, lists pids and kills', async () => {
    const t = await createTask('long', ['sleep', '1000']);
    await t.client.call('Start', { id: 'long' });
    const fifos = new Fifos(join(dir, 'fifo', 'long'), 'e1');
    await t.client.call('Exec', {
      id: 'long',
      exec_id: 'e1',
      stdout: fifos.stdout,
      stderr: fifos.stderr,
      spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: processSpec(['sh', '-c', 'echo exec-out; exit 5']) },
    });
    const execWait = t.client.call('Wait', { id: 'long', exec_id: 'e1' });
    const started = await t.client.call('Start', { id: 'long', exec_id: 'e1' });
    expect(Number(started.pid)).toBeGreaterThan(0);
    expect((await execWait).exit_status).toBe(5);
    await fifos.stdoutEnded;
    expect(fifos.output('stdout')).toBe('exec-out\n');
    expect(await t.client.call('Delete', { id: 'long', exec_id: 'e1' })).toMatchObject({ pid: started.pid, exit_status: 5 });
    await sink.waitFor((e) => e.topic === '/tasks/exit' && e.event.id === 'e1');
    const execTopics = sink.events.filter((e) => e.event.container_id === 'long' && (e.event.exec_id === 'e1' || e.event.id === 'e1'));
    expect(execTopics.map((e) => e.topic)).toEqual(['/tasks/exec-added', '/tasks/exec-started', '/tasks/exit']);

    // stdin reaches the exec, and CloseIO lets it see EOF.
    const catFifos = new Fifos(join(dir, 'fifo', 'long'), 'e2');
    await t.client.call('Exec', {
      id: 'long',
      exec_id: 'e2',
      stdin: catFifos.stdin,
      stdout: catFifos.stdout,
      spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: processSpec(['cat']) },
    });
    await t.client.call('Start', { id: 'long', exec_id: 'e2' });
    catFifos.writeStdin('through cat\n');
    await t.client.call('CloseIO', { id: 'long', exec_id: 'e2', stdin: true });
    expect((await t.client.call('Wait', { id: 'long', exec_id: 'e2' })).exit_status ?? 0).toBe(0);
    await catFifos.stdoutEnded;
    expect(catFifos.output('stdout')).toBe('through cat\n');
    await t.client.call('Delete', { id: 'long', exec_id: 'e2' });

    const pids = await t.client.call('Pids', { id: 'long' });
    expect((pids.processes as { pid: number }[]).map((p) => p.pid)).toContain(t.pid);

    // Update hands LinuxResources JSON to the runtime, which writes the cgroup.
    const limit = 48 << 20;
    await t.client.call('Update', {
      id: 'long',
      resources: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify({ memory: { limit } })) },
    });
    const memoryCgroup = join('/sys/fs/cgroup/memory', CGROUP_PARENT, basename(dir), 'long');
    expect(Number(readFileSync(join(memoryCgroup, 'memory.limit_in_bytes'), 'utf8'))).toBe(limit);

    await t.client.call('Pause', { id: 'long' });
    expect((await t.client.call('State', { id: 'long' })).status).toBe('PAUSED');
    await t.client.call('Resume', { id: 'long' });
    expect((await t.client.call('State', { id: 'long' })).status).toBe('RUNNING');
    expect(await rejection(t.client.call('Delete', { id: 'long' }))).toMatchObject({ grpcCode: Code.FAILED_PRECONDITION });

    const waited = t.client.call('Wait', { id: 'long' });
    await t.client.call('Kill', { id: 'long', signal: SIGKILL });
    expect((await waited).exit_status).toBe(128 + SIGKILL);
    expect(await t.client.call('Delete', { id: 'long' })).toMatchObject({ exit_status: 128 + SIGKILL });
    await sink.waitFor((e) => e.topic === '/tasks/delete' && e.event.container_id === 'long');
    // Init's own events: exec events carry exec_id, or the exec id as `id` (TaskExit).
    const topics = sink.events.filter((e) => e.event.container_id === 'long' && !e.event.exec_id && (e.event.id ?? 'long') === 'long').map((e) => e.topic);
    expect(topics).toEqual(['/tasks/create', '/tasks/start', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete']);
  });

  it('gives a terminal task a pty: output, input and window size', async () => {
    const bundle = makeBundle(dir, 'tty', { args: ['sh', '-c', 'read line; stty size; echo got:$line'], terminal: true });
    const client = await connect(await startShim(env, bundle, 'tty'));
    const fifos = new Fifos(join(dir, 'fifo', 'tty'), 'tty');
    await client.call('Create', { id: 'tty', bundle, terminal: true, stdin: fifos.stdin, stdout: fifos.stdout });
    const waited = client.call('Wait', { id: 'tty' });
    await client.call('Start', { id: 'tty' });
    // The shell blocks in `read` until input arrives, so the size is set before `stty` reads it.
    await client.call('ResizePty', { id: 'tty', width: 40, height: 10 });
    // A terminal exec gets a pty of its own.
    const execFifos = new Fifos(join(dir, 'fifo', 'tty'), 'x1');
    await client.call('Exec', {
      id: 'tty',
      exec_id: 'x1',
      terminal: true,
      stdout: execFifos.stdout,
      spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: processSpec(['sh', '-c', 'test -t 1 && echo exec-has-tty'], true) },
    });
    const execWaited = client.call('Wait', { id: 'tty', exec_id: 'x1' });
    await client.call('Start', { id: 'tty', exec_id: 'x1' });
    expect((await execWaited).exit_status ?? 0).toBe(0);
    await execFifos.stdoutEnded;
    expect(execFifos.output('stdout')).toContain('exec-has-tty');
    await client.call('Delete', { id: 'tty', exec_id: 'x1' });

    fifos.writeStdin('hello\n');
    expect((await waited).exit_status ?? 0).toBe(0);
    await fifos.stdoutEnded;
    expect(fifos.output('stdout')).toContain('10 40');
    expect(fifos.output('stdout')).toContain('got:hello');
    await client.call('Delete', { id: 'tty' });
  });

  it('reports a failed create with the runtime\'s message and accepts the id again', async () => {
    const bundle = makeBundle(dir, 'badspec', { args: ['true'] });
    const client = await connect(await startShim(env, bundle, 'badspec'));
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { root: { path: string } };
    writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ...spec, root: { path: 'no-such-rootfs' } }));
    const err = await rejection(client.call('Create', { id: 'badspec', bundle }));
    expect(err.message).toMatch(/no-such-rootfs|no such file/i);
    expect(await rejection(client.call('State', { id: 'badspec' }))).toMatchObject({ grpcCode: Code.NOT_FOUND });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    await client.call('Create', { id: 'badspec', bundle });
    await client.call('Delete', { id: 'badspec' });
  });

  it('reports an OOM kill as TaskOOM before TaskExit', async () => {
    // The shell doubles a string until the 16 MiB limit kills it.
    const bundle = makeBundle(dir, 'oom', { args: ['sh', '-c', 'a=aaaaaaaa; while true; do a=$a$a; done'], memoryLimit: 16 << 20 });
    const client = await connect(await startShim(env, bundle, 'oom'));
    await client.call('Create', { id: 'oom', bundle });
    const waited = client.call('Wait', { id: 'oom' });
    await client.call('Start', { id: 'oom' });
    expect((await waited).exit_status).toBe(128 + SIGKILL);
    await client.call('Delete', { id: 'oom' });
    await sink.waitFor((e) => e.topic === '/tasks/delete' && e.event.container_id === 'oom');
    const topics = sink.events.filter((e) => e.event.container_id === 'oom').map((e) => e.topic);
    expect(topics).toEqual(['/tasks/create', '/tasks/start', '/tasks/oom', '/tasks/exit', '/tasks/delete']);
  });

  it('sends no TaskOOM when a never-started task is deleted', async () => {
    const t = await createTask('nooom', ['true']);
    await t.client.call('Delete', { id: 'nooom' });
    await sink.waitFor((e) => e.topic === '/tasks/delete' && e.event.container_id === 'nooom');
    expect(sink.events.filter((e) => e.event.container_id === 'nooom').map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/exit', '/tasks/delete']);
  });

  it('reports the task cgroup in Stats and refuses Checkpoint', async () => {
    const t = await createTask('stats', ['true']);
    const stats = (await t.client.call('Stats', { id: 'stats' })).stats as { type_url: string; value: Buffer };
    expect(stats.type_url).toBe('io.containerd.cgroups.v1.Metrics');
    const metrics = decodeMessage<{ pids?: { current?: number } }>(messageType(stats.type_url), stats.value);
    // The created task's init is waiting in its cgroup.
    expect(metrics.pids?.current).toBeGreaterThanOrEqual(1);
    expect(await rejection(t.client.call('Checkpoint', { id: 'stats' }))).toMatchObject({ grpcCode: Code.UNIMPLEMENTED });
    // A never-started task is force-deleted; its waiting init was killed.
    expect(await t.client.call('Delete', { id: 'stats' })).toMatchObject({ exit_status: 128 + SIGKILL });
  });

  it('puts the tasks of one group in one shim, a dedicated task in its own, and exits after the last delete', async () => {
    const a = await createTask('ga', ['sleep', '1000']);
    const b = await createTask('gb', ['sleep', '1000']);
    const own = await createTask('gd', ['sleep', '1000'], { 'io.berth.shim.dedicated': 'true' });
    const pod = await createTask('gp', ['sleep', '1000'], { 'io.kubernetes.cri.sandbox-id': 'pod1' });
    expect(b.address).toBe(a.address);
    expect(own.address).not.toBe(a.address);
    expect(pod.address).not.toBe(a.address);
    // berthd joins a running group shim by computing its socket itself: both must agree.
    const berthdSocket = (t: typeof a, id: string): string =>
      `unix://${join(dir, 's', groupHash(join(dir, 'berthd.sock'), NAMESPACE, groupKey(t.bundle, id)))}`;
    expect([berthdSocket(a, 'ga'), berthdSocket(own, 'gd'), berthdSocket(pod, 'gp')]).toEqual([a.address, own.address, pod.address]);
    const shimPid = async (t: typeof a) => Number((await t.client.call('Connect', { id: '' })).shim_pid);
    const [pa, pb, pd] = [await shimPid(a), await shimPid(b), await shimPid(own)];
    expect(pb).toBe(pa);
    expect(pd).not.toBe(pa);
    expect(await processesUnder(dir)).toContain(pa);

    for (const t of [a, b]) {
      const id = t === a ? 'ga' : 'gb';
      await t.client.call('Kill', { id, signal: SIGKILL });
      await t.client.call('Wait', { id });
      await t.client.call('Delete', { id });
    }
    expect(await waitPidGone(pa, 30_000)).toBe(true);
    expect(existsSync(a.address.replace('unix://', ''))).toBe(false);
    // The dedicated shim is unaffected.
    expect((await own.client.call('State', { id: 'gd' })).status).toBe('CREATED');
    for (const [t, id] of [[own, 'gd'], [pod, 'gp']] as const) await t.client.call('Delete', { id });
    expect(await waitPidGone(pd, 30_000)).toBe(true);
  });

  it('runs the runtime from one sealed copy of its binary, which the shim holds for all its tasks', async () => {
    const pod = { 'io.kubernetes.cri.sandbox-id': 'pod-sealed' };
    const tasks = [await createTask('se1', ['true'], pod), await createTask('se2', ['true'], pod)];
    // A created task's init is still the runtime, waiting for Start.
    const exes = tasks.map((t) => ({ link: readlinkSync(`/proc/${t.pid}/exe`), ino: statSync(`/proc/${t.pid}/exe`).ino }));
    for (const e of exes) expect(e.link).toMatch(/^\/memfd:/);
    expect(exes[1]!.ino).toBe(exes[0]!.ino);
    const shimPid = Number((await tasks[0]!.client.call('Connect', { id: '' })).shim_pid);
    const held = readdirSync(`/proc/${shimPid}/fd`).map((fd) => statSync(`/proc/${shimPid}/fd/${fd}`, { throwIfNoEntry: false })?.ino);
    expect(held).toContain(exes[0]!.ino);
    for (const [i, t] of tasks.entries()) await t.client.call('Delete', { id: `se${i + 1}` });
  });

  it('never hands out a shim that is exiting: start right after the last delete, and after Shutdown', async () => {
    const pod = { 'io.kubernetes.cri.sandbox-id': 'pod-reuse' };
    const first = await createTask('re1', ['true'], pod);
    await first.client.call('Delete', { id: 're1' });
    // Whether this lands in the old shim's grace period or after it, Create must work.
    const second = await createTask('re2', ['true'], pod);
    expect(second.address).toBe(first.address);
    await second.client.call('Delete', { id: 're2' });
    const before = Number((await second.client.call('Connect', { id: '' })).shim_pid);
    await second.client.call('Shutdown', { id: 're2' });
    expect(await waitPidGone(before, 30_000)).toBe(true);
    const third = await createTask('re3', ['true'], pod);
    const after = Number((await third.client.call('Connect', { id: '' })).shim_pid);
    expect(after).not.toBe(before);
    await third.client.call('Delete', { id: 're3' });
  });

  it('serves many tasks of one group concurrently, each with its own exit and output', async () => {
    const pod = { 'io.kubernetes.cri.sandbox-id': 'pod-many' };
    const ids = Array.from({ length: 10 }, (_, i) => `many${i}`);
    const results = await Promise.all(
      ids.map(async (id, i) => {
        const t = await createTask(id, ['sh', '-c', `echo ${id}; exit ${i + 10}`], pod);
        const waited = t.client.call('Wait', { id });
        await t.client.call('Start', { id });
        const exit = Number((await waited).exit_status);
        await t.fifos.stdoutEnded;
        await t.client.call('Delete', { id });
        return { address: t.address, exit, out: t.fifos.output('stdout') };
      }),
    );
    expect(new Set(results.map((r) => r.address)).size).toBe(1);
    expect(results.map((r) => r.exit)).toEqual(ids.map((_, i) => i + 10));
    expect(results.map((r) => r.out)).toEqual(ids.map((id) => `${id}\n`));
    for (const [i, id] of ids.entries()) {
      const exit = await sink.waitFor((e) => e.topic === '/tasks/exit' && e.event.container_id === id);
      expect(exit.event.exit_status).toBe(i + 10);
    }
  });

  it('buffers events while the daemon is away and delivers them in order, once', async () => {
    await sink.stop();
    const t = await createTask('buffered', ['sh', '-c', 'exit 4'], { 'io.berth.shim.dedicated': 'true' });
    await t.client.call('Start', { id: 'buffered' });
    expect((await t.client.call('Wait', { id: 'buffered' })).exit_status).toBe(4);
    await t.client.call('Delete', { id: 'buffered' });
    const before = sink.events.length;
    await sink.start();
    const deleted = await sink.waitFor((e) => e.topic === '/tasks/delete' && e.event.container_id === 'buffered');
    const mine = sink.events.slice(before).filter((e) => e.shimId === deleted.shimId);
    expect(mine.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    const seqs = mine.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('cleans up with `delete` when the shim is gone, reporting the recorded exit', async () => {
    const t = await createTask('orphan', ['sh', '-c', 'exit 7'], { 'io.berth.shim.dedicated': 'true' });
    await t.client.call('Start', { id: 'orphan' });
    expect((await t.client.call('Wait', { id: 'orphan' })).exit_status).toBe(7);
    const shim = Number((await t.client.call('Connect', { id: 'orphan' })).shim_pid);
    process.kill(shim, 'SIGKILL');
    expect(await waitPidGone(shim, 30_000)).toBe(true);
    const res = deleteViaBinary(env, t.bundle, 'orphan');
    expect(res).toMatchObject({ pid: t.pid, exit_status: 7 });
    expect(existsSync(join(dir, 'runtime', 'shimtest', 'orphan'))).toBe(false);
  });

  it('ends a Wait whose caller is gone (connection closed, deadline passed) and keeps the task', async () => {
    const t = await createTask('waitgone', ['sleep', '1000'], { 'io.berth.shim.dedicated': 'true' });
    await t.client.call('Start', { id: 'waitgone' });
    const shim = Number((await t.client.call('Connect', { id: '' })).shim_pid);
    // A request's thread ends just after its reply: give those of the calls above time to go.
    await sleep(200);
    const idle = threads(shim);

    const gone = await TaskClient.connect(t.address);
    const abandoned = rejection(gone.call('Wait', { id: 'waitgone' }));
    // The connection's reader thread and the Wait's own.
    expect(await threadsBecome(shim, idle + 2, 2000)).toBe(idle + 2);
    gone.close();
    await abandoned;
    expect(await threadsBecome(shim, idle, 2000)).toBe(idle);

    const late = await rejection(t.client.call('Wait', { id: 'waitgone' }, 300));
    expect(late.grpcCode).toBe(Code.DEADLINE_EXCEEDED);
    expect(await threadsBecome(shim, idle, 2000)).toBe(idle);

    expect((await t.client.call('State', { id: 'waitgone' })).status).toBe('RUNNING');
    const again = await connect(t.address);
    const waited = again.call('Wait', { id: 'waitgone' });
    await t.client.call('Kill', { id: 'waitgone', signal: SIGKILL });
    expect((await waited).exit_status).toBe(128 + SIGKILL);
    await t.client.call('Delete', { id: 'waitgone' });
  });

  it('answers Shutdown of an idle shim every time, then exits without a pause', async () => {
    const exitMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const id = `shut${i}`;
      // No rootfs, no process: Create fails, and so uses up the reservation `start` made.
      const bundle = join(dir, 'bundles', id);
      mkdirSync(bundle, { recursive: true });
      writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: { 'io.berth.shim.dedicated': 'true' } }));
      const client = await connect(await startShim(env, bundle, id));
      await rejection(client.call('Create', { id, bundle }));
      const pid = Number((await client.call('Connect', { id: '' })).shim_pid);
      expect(await client.call('Shutdown', { id })).toEqual({});
      const answered = Date.now();
      expect(await waitPidGone(pid, 10_000)).toBe(true);
      exitMs.push(Date.now() - answered);
    }
    // The exit waits for the answer itself, not for a fixed time in which it usually goes out.
    exitMs.sort((x, y) => x - y);
    expect(exitMs[exitMs.length >> 1]).toBeLessThan(100);
  });

  it('leaves no process behind once every task is deleted', async () => {
    for (const c of clients) c.close();
    clients.length = 0;
    const deadline = Date.now() + 30_000;
    while ((await processesUnder(dir)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await processesUnder(dir)).toEqual([]);
  });
});

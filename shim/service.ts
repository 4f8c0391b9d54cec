import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packAny } from '../services/server/protos.js';
import { cgroupV1Metrics } from './cgroup-metrics.js';
import { ConsoleIO, ConsoleSocket } from './console.js';
import type { EventPublisher } from './events.js';
import { writeExitFile } from './exitfile.js';
import type { Lifecycle } from './lifecycle.js';
import { OomWatcher } from './oom.js';
import { loadBundleOptions, optionsFromAny, saveBundleOptions } from './options.js';
import { runtimeRoot } from './paths.js';
import { Container, Proc, type Exit } from './process.js';
import type { Reaper } from './reaper.js';
import { SHIM_VERSION } from './protocol.js';
import { Runtime, type Stdio } from './runtime.js';
import { FifoIO, nullStdio, type StdioPaths } from './stdio.js';
import { timestamp, type Timestamp } from './time.js';
import type { ServiceHandlers } from '../services/ttrpc/server.js';
import { Code, TtrpcError } from '../services/ttrpc/status.js';


/** The console master must arrive while the runtime runs; this bounds a runtime that never sends it. */
const CONSOLE_TIMEOUT_MS = 10_000;
/** How long Delete of a never-started task waits for its killed init to be reaped. */
const KILLED_INIT_WAIT_MS = 10_000;
const ID_PATTERN = /^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$/;

interface AnyValue {
  type_url?: string;
  value?: Buffer;
}
interface Mount {
  type?: string;
  source?: string;
  target?: string;
  options?: string[];
}
interface CreateTaskRequest {
  id?: string;
  bundle?: string;
  rootfs?: Mount[];
  terminal?: boolean;
  stdin?: string;
  stdout?: string;
  stderr?: string;
  options?: AnyValue;
}
interface ProcessRequest {
  id?: string;
  exec_id?: string;
}
interface ExecRequest extends ProcessRequest {
  terminal?: boolean;
  stdin?: string;
  stdout?: string;
  stderr?: string;
  spec?: AnyValue;
}
interface KillRequest extends ProcessRequest {
  signal?: number;
  all?: boolean;
}
interface ResizeRequest extends ProcessRequest {
  width?: number;
  height?: number;
}
interface CloseIORequest extends ProcessRequest {
  stdin?: boolean;
}
interface UpdateRequest {
  id?: string;
  resources?: AnyValue;
}

export interface TaskServiceDeps {
  namespace: string;
  reaper: Reaper;
  events: EventPublisher;
  lifecycle: Lifecycle;
  log: (message: string) => void;
}

function validId(id: string | undefined, what: string): string {
  if (!id || id.length > 76 || !ID_PATTERN.test(id)) {
    throw new TtrpcError(Code.INVALID_ARGUMENT, `${what} ${JSON.stringify(id ?? '')}: invalid`);
  }
  return id;
}

/** exit_status and exited_at of a Wait/Delete/State answer; both absent while the process runs. */
function exitFields(exit: Exit | undefined): { exit_status?: number; exited_at?: Timestamp } {
  return exit ? { exit_status: exit.status, exited_at: timestamp(exit.exitedAt) } : {};
}

/** containerd.task.v2.Task for every task of this shim's group. */
export class TaskService {
  private readonly containers = new Map<string, Container>();
  /** Ids whose Create is in progress: reserved so a concurrent Create cannot take the same id. */
  private readonly creating = new Set<string>();

  constructor(private readonly deps: TaskServiceDeps) {}

  get taskCount(): number {
    return this.containers.size + this.creating.size;
  }

  handlers(): ServiceHandlers {
    const unimplemented = (what: string) => (): never => {
      throw new TtrpcError(Code.UNIMPLEMENTED, what);
    };
    return {
      Create: (r: CreateTaskRequest) => this.create(r),
      Start: (r: ProcessRequest) => this.start(r),
      Delete: (r: ProcessRequest) => this.delete(r),
      State: (r: ProcessRequest) => this.state(r),
      Pids: (r: ProcessRequest) => this.pids(r),
      Pause: (r: ProcessRequest) => this.pause(r),
      Resume: (r: ProcessRequest) => this.resume(r),
      Kill: (r: KillRequest) => this.kill(r),
      Exec: (r: ExecRequest) => this.exec(r),
      ResizePty: (r: ResizeRequest) => this.resizePty(r),
      CloseIO: (r: CloseIORequest) => this.closeIO(r),
      Update: (r: UpdateRequest) => this.update(r),
      Wait: (r: ProcessRequest) => this.wait(r),
      Connect: (r: ProcessRequest) => this.connect(r),
      Shutdown: () => this.deps.lifecycle.shutdown(),
      Stats: (r: ProcessRequest) => this.stats(r),
      Checkpoint: unimplemented('Checkpoint: berth-shim does not checkpoint (no CRIU support)'),
    };
  }

  /** The task's cgroup statistics, from the cgroupsPath of its spec (containerd's Stats). */
  private async stats(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    const spec = JSON.parse(readFileSync(join(c.bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    const cgroupsPath = spec.linux?.cgroupsPath;
    if (!cgroupsPath) throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${c.id}: its spec sets no linux.cgroupsPath to read statistics from`);
    return { stats: await cgroupV1Metrics(cgroupsPath) };
  }

  private container(id: string | undefined): Container {
    const c = this.containers.get(id ?? '');
    if (!c) throw new TtrpcError(Code.NOT_FOUND, `task ${id ?? ''}: not found`);
    return c;
  }

  private publish(topic: string, type: string, event: object): void {
    this.deps.events.publish(this.deps.namespace, topic, `containerd.events.${type}`, event);
  }

  private async create(req: CreateTaskRequest): Promise<object> {
    const id = validId(req.id, 'task id');
    const bundle = req.bundle ?? '';
    if (!bundle) throw new TtrpcError(Code.INVALID_ARGUMENT, `task ${id}: bundle is required`);
    if (this.containers.has(id) || this.creating.has(id)) throw new TtrpcError(Code.ALREADY_EXISTS, `task ${id}: already exists`);
    this.deps.lifecycle.taskCreated(id);
    this.creating.add(id);
    try {
      const options = req.options?.type_url ? optionsFromAny(req.options) : loadBundleOptions(bundle);
      saveBundleOptions(bundle, options);
      const root = options.root || runtimeRoot(this.deps.namespace);
      mkdirSync(root, { recursive: true, mode: 0o700 });
      const runtime = new Runtime(options.binaryName, root, this.deps.reaper);
      const stdio = { stdin: req.stdin ?? '', stdout: req.stdout ?? '', stderr: req.stderr ?? '' };
      const init = new Proc(id, '', stdio, Boolean(req.terminal));
      const pidFile = join(bundle, 'init.pid');
      try {
        await this.launch(init, (fds, socket) => runtime.create(id, bundle, pidFile, fds, socket), pidFile);
      } catch (err) {
        // A runtime that failed half-way may have left its state and a waiting init behind.
        await runtime.delete(id, true).catch(() => undefined);
        throw err;
      }
      const container = new Container(id, bundle, runtime, init);
      this.containers.set(id, container);
      this.watchOom(container);
      this.watchExit(container, init);
      this.publish('/tasks/create', 'TaskCreate', {
        container_id: id,
        bundle,
        rootfs: req.rootfs ?? [],
        io: { ...stdio, terminal: init.terminal },
        pid: init.pid,
      });
      return { pid: init.pid };
    } finally {
      this.creating.delete(id);
      if (!this.containers.has(id)) this.deps.lifecycle.taskRemoved();
    }
  }

  /**
   * Runs a runtime command that starts a process (create, exec) with the process's stdio, then
   * reads its pid file. A terminal process gets its pty master through a console socket.
   */
  private async launch(proc: Proc, run: (stdio: Stdio, consoleSocket?: string) => Promise<void>, pidFile: string): Promise<void> {
    if (!proc.terminal) {
      const io = new FifoIO(proc.stdio);
      try {
        await run(io.runtimeStdio);
      } catch (err) {
        io.close();
        throw err;
      } finally {
        io.releaseRuntimeEnds();
      }
      proc.io = io;
    } else {
      const socket = new ConsoleSocket();
      const fds = nullStdio();
      try {
        await run(fds.stdio, socket.path);
        proc.io = new ConsoleIO(await withTimeout(socket.master, CONSOLE_TIMEOUT_MS, 'console master'), proc.stdio);
      } finally {
        fds.close();
        socket.close();
      }
    }
    proc.pid = Number(readFileSync(pidFile, 'utf8').trim());
  }

  private watchOom(container: Container): void {
    try {
      container.oom = OomWatcher.forPid(container.init.pid, () =>
        this.publish('/tasks/oom', 'TaskOOM', { container_id: container.id }),
      );
    } catch (err) {
      this.deps.log(`no OOM events for ${container.id}: ${(err as Error).message}`);
    }
  }

  private watchExit(container: Container, proc: Proc): void {
    void this.deps.reaper.track(proc.pid).then(
      (status) => this.onExit(container, proc, status.status, status.signal),
      (err: unknown) => {
        this.deps.log(`tracking pid ${proc.pid} of ${proc.id}: ${(err as Error).message}`);
        return this.onExit(container, proc, 255, 0);
      },
    );
  }

  private async onExit(container: Container, proc: Proc, status: number, signal: number): Promise<void> {
    const exit = { status, exitedAt: new Date() };
    await proc.starting;
    try {
      writeExitFile(container.bundle, proc.execId, { pid: proc.pid, status, signal, exitedAt: exit.exitedAt.toISOString() });
    } catch (err) {
      this.deps.log(`exit file for ${proc.id}: ${(err as Error).message}`);
    }
    if (!proc.execId) {
      // An OOM kill of init signals the eventfd and the pidfd together; report the OOM first.
      container.oom?.check();
      container.oom?.close();
      container.oom = undefined;
    }
    proc.markExited(exit);
    const io = proc.io;
    if (io instanceof ConsoleIO) void io.drained.then(() => io.close());
    else io?.close();
    this.publish('/tasks/exit', 'TaskExit', {
      container_id: container.id,
      id: proc.id,
      pid: proc.pid,
      exit_status: status,
      exited_at: timestamp(exit.exitedAt),
    });
  }

  private async start(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    const proc = c.process(req.exec_id ?? '');
    if (proc.state !== 'CREATED') throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${proc.id}: already started`);
    if (!proc.execId) {
      const started = c.runtime.start(c.id).then(() => {
        proc.moveTo('RUNNING');
        this.publish('/tasks/start', 'TaskStart', { container_id: c.id, pid: proc.pid });
      });
      proc.starting = started.catch(() => undefined);
      await started;
      return { pid: proc.pid };
    }
    if (c.init.state === 'STOPPED') throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${c.id}: not running`);
    const specFile = join(c.bundle, `exec-${proc.execId}.json`);
    const pidFile = join(c.bundle, `exec-${proc.execId}.pid`);
    try {
      await this.launch(proc, (fds, socket) => c.runtime.exec(c.id, specFile, pidFile, fds, socket), pidFile);
    } finally {
      rmSync(specFile, { force: true });
    }
    proc.moveTo('RUNNING');
    this.watchExit(c, proc);
    // Published before the exit can be (its handler runs in a later microtask), as containerd orders them.
    this.publish('/tasks/exec-started', 'TaskExecStarted', { container_id: c.id, exec_id: proc.execId, pid: proc.pid });
    return { pid: proc.pid };
  }

  private exec(req: ExecRequest): object {
    const c = this.container(req.id);
    const execId = validId(req.exec_id, 'exec id');
    if (c.execs.has(execId)) throw new TtrpcError(Code.ALREADY_EXISTS, `exec ${execId}: already exists`);
    if (c.init.state === 'STOPPED') throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${c.id}: not running`);
    if (!req.spec?.value) throw new TtrpcError(Code.INVALID_ARGUMENT, `exec ${execId}: process spec is required`);
    // The spec is JSON (types.containerd.io/opencontainers/runtime-spec/1/Process); the runtime parses it.
    writeFileSync(join(c.bundle, `exec-${execId}.json`), req.spec.value);
    const stdio = { stdin: req.stdin ?? '', stdout: req.stdout ?? '', stderr: req.stderr ?? '' };
    c.execs.set(execId, new Proc(c.id, execId, stdio, Boolean(req.terminal)));
    this.publish('/tasks/exec-added', 'TaskExecAdded', { container_id: c.id, exec_id: execId });
    return {};
  }

  private async delete(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    const proc = c.process(req.exec_id ?? '');
    if (proc.state === 'RUNNING' || proc.state === 'PAUSED') {
      throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${proc.id}: cannot delete a running process`);
    }
    if (proc.execId) {
      c.execs.delete(proc.execId);
      rmSync(join(c.bundle, `exec-${proc.execId}.json`), { force: true });
      return { pid: proc.pid, ...exitFields(proc.exit) };
    }
    await this.deleteInit(c);
    this.containers.delete(c.id);
    const exit = c.init.exit;
    this.publish('/tasks/delete', 'TaskDelete', { container_id: c.id, id: c.id, pid: c.init.pid, ...exitFields(exit) });
    this.deps.lifecycle.taskRemoved();
    return { pid: c.init.pid, ...exitFields(exit) };
  }

  private async deleteInit(c: Container): Promise<void> {
    const neverStarted = c.init.state === 'CREATED';
    // Removing the cgroup signals the OOM eventfd too; that is not an OOM.
    c.oom?.close();
    c.oom = undefined;
    try {
      await c.runtime.delete(c.id, neverStarted);
    } catch (err) {
      if (!(err instanceof TtrpcError && err.grpcCode === Code.NOT_FOUND)) throw err;
    }
    // delete --force killed the waiting init; its status (SIGKILL) is what Delete reports.
    if (neverStarted) await withTimeout(c.init.exited, KILLED_INIT_WAIT_MS, `exit of ${c.id}`).catch(() => undefined);
    c.init.io?.close();
    for (const exec of c.execs.values()) exec.io?.close();
  }

  private state(req: ProcessRequest): object {
    const c = this.container(req.id);
    const proc = c.process(req.exec_id ?? '');
    return {
      id: proc.id,
      bundle: c.bundle,
      pid: proc.pid,
      status: proc.state,
      stdin: proc.stdio.stdin,
      stdout: proc.stdio.stdout,
      stderr: proc.stdio.stderr,
      terminal: proc.terminal,
      exec_id: proc.execId,
      ...exitFields(proc.exit),
    };
  }

  private async pids(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    const pids = await c.runtime.ps(c.id);
    const execByPid = new Map([...c.execs.values()].map((p) => [p.pid, p.execId]));
    return {
      processes: pids.map((pid) => {
        const execId = execByPid.get(pid);
        return execId ? { pid, info: packAny('containerd.runc.v1.ProcessDetails', { exec_id: execId }) } : { pid };
      }),
    };
  }

  private async pause(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    if (c.init.state !== 'RUNNING') throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${c.id}: not running`);
    await c.runtime.pause(c.id);
    c.init.moveTo('PAUSED');
    this.publish('/tasks/paused', 'TaskPaused', { container_id: c.id });
    return {};
  }

  private async resume(req: ProcessRequest): Promise<object> {
    const c = this.container(req.id);
    if (c.init.state !== 'PAUSED') throw new TtrpcError(Code.FAILED_PRECONDITION, `task ${c.id}: not paused`);
    await c.runtime.resume(c.id);
    c.init.moveTo('RUNNING');
    this.publish('/tasks/resumed', 'TaskResumed', { container_id: c.id });
    return {};
  }

  private async kill(req: KillRequest): Promise<object> {
    const c = this.container(req.id);
    const proc = c.process(req.exec_id ?? '');
    const signal = req.signal ?? 0;
    if (proc.state === 'STOPPED') throw new TtrpcError(Code.NOT_FOUND, `process ${proc.id}: process already finished`);
    if (!proc.execId) {
      await c.runtime.kill(c.id, signal, Boolean(req.all));
      return {};
    }
    if (proc.state === 'CREATED') throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${proc.id}: not started`);
    // The pid cannot have been reused: it stays a zombie until this shim reaps it (then STOPPED).
    process.kill(proc.pid, signal);
    return {};
  }

  private resizePty(req: ResizeRequest): object {
    const proc = this.container(req.id).process(req.exec_id ?? '');
    if (!(proc.io instanceof ConsoleIO)) throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${proc.id}: no terminal`);
    proc.io.resize(req.width ?? 0, req.height ?? 0);
    return {};
  }

  private closeIO(req: CloseIORequest): object {
    const proc = this.container(req.id).process(req.exec_id ?? '');
    if (req.stdin) proc.io?.closeStdin();
    return {};
  }

  private async update(req: UpdateRequest): Promise<object> {
    const c = this.container(req.id);
    if (!req.resources?.value) throw new TtrpcError(Code.INVALID_ARGUMENT, `task ${c.id}: resources are required`);
    // LinuxResources travel as JSON, which is what the runtime's --resources file holds.
    const file = join(c.bundle, `resources-${process.pid}-${Date.now()}.json`);
    writeFileSync(file, req.resources.value);
    try {
      await c.runtime.update(c.id, file);
    } finally {
      rmSync(file, { force: true });
    }
    return {};
  }

  private async wait(req: ProcessRequest): Promise<object> {
    const proc = this.container(req.id).process(req.exec_id ?? '');
    const exit = await proc.exited;
    return exitFields(exit);
  }

  /** Also reserves this shim for a task about to be created (see Lifecycle). */
  private connect(req: ProcessRequest): object {
    const c = this.containers.get(req.id ?? '');
    if (!c && req.id) this.deps.lifecycle.reserve(req.id);
    return { shim_pid: process.pid, task_pid: c?.init.pid ?? 0, version: SHIM_VERSION };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TtrpcError(Code.DEADLINE_EXCEEDED, `timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

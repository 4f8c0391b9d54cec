import { BerthError, alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { AnyValue, ContainerService } from '../containers/service.js';
import type { Message } from '../server/protos.js';
import type { MountSpec } from '../snapshots/types.js';
import { fromTimestamp, toTimestamp, type Timestamp } from '../time.js';
import { validateIdentifier } from '../validate.js';
import { Bundle, listBundles } from './bundle.js';
import type { BundleDirs } from './bundle-dirs.js';
import type { ExitRecord, TaskShim } from './shim.js';
import { DEDICATED_ANNOTATION } from '../runtime/shim-group.js';

export type ProcessStatus = 'UNKNOWN' | 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED' | 'PAUSING';

export interface ProcessState {
  containerId: string;
  id: string;
  pid: number;
  status: ProcessStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number;
  exitedAt?: number;
}

export interface ExitResult {
  pid: number;
  exitStatus: number;
  exitedAt: number;
}

export interface CreateTaskInput {
  containerId: string;
  rootfs: MountSpec[];
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  options?: AnyValue;
}

export interface ExecInput {
  execId: string;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  spec: AnyValue;
}

/** How berthd starts and reaches shims (services/runtime/shim-manager.ts). */
export interface ShimLauncher {
  start(namespace: string, id: string, bundle: Bundle, options: AnyValue | undefined, labels: Record<string, string>): Promise<TaskShim>;
  connect(address: string, timeoutMs: number): Promise<TaskShim>;
  /** The runtime v2 `delete` subcommand: cleans up a task whose shim is gone, without RPC. */
  cleanup(namespace: string, id: string, bundle: Bundle): Promise<void>;
  /** Called after a task's Delete: lets its shim exit if that was its last task. */
  released(namespace: string, id: string, shim: TaskShim): Promise<void>;
}

export type TaskEventPublisher = (namespace: string, topic: string, typeName: string, event: object) => void;

interface TaskRecord {
  namespace: string;
  id: string;
  bundle: Bundle;
  shim: TaskShim | undefined;
  pid: number;
  /** Set once the shim is known dead: what it recorded, or 255 and why not. */
  dead?: ExitRecord;
  deadSignal: Promise<void>;
  markDead: () => void;
}

interface StateResponse {
  id?: string;
  pid?: number;
  status?: ProcessStatus;
  stdin?: string;
  stdout?: string;
  stderr?: string;
  terminal?: boolean;
  exit_status?: number;
  exited_at?: Timestamp;
  exec_id?: string;
}

const key = (namespace: string, id: string): string => `${namespace}/${id}`;
const SHIM_LOAD_TIMEOUT_MS = 3_000;
const DEAD_SHIM_STATUS = 255;

/**
 * Running tasks. berthd is never their parent: each lives under a shim, which is the source of
 * truth for its state; berthd keeps only which shim serves which task, and the bundle on disk.
 */
export class TaskService {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly creating = new Set<string>();
  /** Set when berthd stops: its connections close, but the shims and their tasks live on. */
  private detached = false;

  constructor(
    private readonly containers: ContainerService,
    private readonly shims: ShimLauncher,
    private readonly dirs: BundleDirs,
    private readonly publish: TaskEventPublisher,
    private readonly log: Logger,
  ) {}

  detach(): void {
    this.detached = true;
  }

  hasTask(namespace: string, id: string): boolean {
    return this.tasks.has(key(namespace, id)) || this.creating.has(key(namespace, id));
  }

  async create(namespace: string, input: CreateTaskInput): Promise<{ pid: number }> {
    const container = this.containers.get(namespace, input.containerId);
    const k = key(namespace, container.id);
    if (this.hasTask(namespace, container.id)) throw alreadyExists(`task ${container.id}`);
    if (!container.spec?.value.length) throw failedPrecondition(`container ${container.id} has no spec`);
    this.creating.add(k);
    try {
      const bundle = await Bundle.create(this.dirs, namespace, container.id, bundleSpec(container.spec.value, container.labels), input.rootfs);
      // As containerd does: without task options, the container's runtime options apply.
      const options = input.options ?? container.runtime.options;
      let shim: TaskShim | undefined;
      try {
        shim = await this.shims.start(namespace, container.id, bundle, options, container.labels);
        await bundle.writeAddress(shim.address);
        const res = await shim.call<{ pid?: number }>('Create', {
          id: container.id,
          bundle: bundle.path,
          rootfs: [],
          terminal: input.terminal,
          stdin: input.stdin,
          stdout: input.stdout,
          stderr: input.stderr,
          options,
        }, { namespace });
        const pid = res.pid ?? 0;
        this.track(namespace, container.id, bundle, shim, pid);
        return { pid };
      } catch (err) {
        if (shim) {
          await shim.call('Delete', { id: container.id }, { namespace }).catch(() => undefined);
          await this.shims.released(namespace, container.id, shim);
        }
        this.dropBundle(bundle, 'cannot remove bundle after a failed create');
        throw err;
      }
    } finally {
      this.creating.delete(k);
    }
  }

  async start(namespace: string, id: string, execId = ''): Promise<{ pid: number }> {
    const res = await this.callShim<{ pid?: number }>(namespace, id, 'Start', { id, exec_id: execId });
    return { pid: res.pid ?? 0 };
  }

  async get(namespace: string, id: string, execId = ''): Promise<ProcessState> {
    const record = this.record(namespace, id);
    if (record.dead) {
      if (execId) throw notFound(`process ${execId} of task ${id}`);
      return this.deadState(record);
    }
    try {
      return stateOf(id, await this.callShim<StateResponse>(namespace, id, 'State', { id, exec_id: execId }));
    } catch (err) {
      if (record.dead && !execId) return this.deadState(record);
      throw err;
    }
  }

  async list(namespace: string): Promise<ProcessState[]> {
    const records = [...this.tasks.values()].filter((r) => r.namespace === namespace);
    // One shim failing to answer must not fail the listing; its task shows STOPPED once the shim
    // is known dead, UNKNOWN while it merely did not answer.
    return Promise.all(records.map((r) => this.get(namespace, r.id).catch(() => (r.dead ? this.deadState(r) : this.unknownState(r)))));
  }

  async delete(namespace: string, id: string): Promise<ExitResult> {
    const record = this.record(namespace, id);
    let result: ExitResult;
    if (record.dead) {
      await this.shims.cleanup(namespace, id, record.bundle).catch((err: unknown) => this.log.warn('shim cleanup failed', { id, error: err }));
      result = { pid: record.pid, exitStatus: record.dead.status, exitedAt: record.dead.exitedAt };
      this.publish(namespace, '/tasks/delete', 'containerd.events.TaskDelete', {
        container_id: id,
        pid: record.pid,
        exit_status: result.exitStatus,
        exited_at: toTimestamp(result.exitedAt),
        id,
      });
    } else {
      const state = await this.get(namespace, id);
      if (state.status !== 'STOPPED' && state.status !== 'CREATED') {
        throw failedPrecondition(`task ${id} is ${state.status.toLowerCase()}: kill it and wait for it to stop before deleting`);
      }
      const res = await this.callShim<{ pid?: number; exit_status?: number; exited_at?: Timestamp }>(namespace, id, 'Delete', { id });
      result = { pid: res.pid ?? 0, exitStatus: res.exit_status ?? 0, exitedAt: fromTimestamp(res.exited_at) ?? Date.now() };
      this.tasks.delete(key(namespace, id));
      if (record.shim) await this.shims.released(namespace, id, record.shim);
    }
    this.tasks.delete(key(namespace, id));
    record.bundle.destroy();
    return result;
  }

  async deleteProcess(namespace: string, id: string, execId: string): Promise<ExitResult> {
    validateIdentifier('exec', execId);
    const res = await this.callShim<{ pid?: number; exit_status?: number; exited_at?: Timestamp }>(namespace, id, 'Delete', {
      id,
      exec_id: execId,
    });
    return { pid: res.pid ?? 0, exitStatus: res.exit_status ?? 0, exitedAt: fromTimestamp(res.exited_at) ?? Date.now() };
  }

  async kill(namespace: string, id: string, execId: string, signal: number, all: boolean): Promise<void> {
    if (!Number.isInteger(signal) || signal <= 0 || signal > 64) throw invalidArgument(`signal ${signal} is not a valid signal number`);
    await this.callShim(namespace, id, 'Kill', { id, exec_id: execId, signal, all });
  }

  async exec(namespace: string, id: string, input: ExecInput): Promise<void> {
    validateIdentifier('exec', input.execId);
    await this.callShim(namespace, id, 'Exec', {
      id,
      exec_id: input.execId,
      terminal: input.terminal,
      stdin: input.stdin,
      stdout: input.stdout,
      stderr: input.stderr,
      spec: input.spec,
    });
  }

  async resizePty(namespace: string, id: string, execId: string, width: number, height: number): Promise<void> {
    await this.callShim(namespace, id, 'ResizePty', { id, exec_id: execId, width, height });
  }

  async closeIO(namespace: string, id: string, execId: string, stdin: boolean): Promise<void> {
    await this.callShim(namespace, id, 'CloseIO', { id, exec_id: execId, stdin });
  }

  async pause(namespace: string, id: string): Promise<void> {
    await this.callShim(namespace, id, 'Pause', { id });
  }

  async resume(namespace: string, id: string): Promise<void> {
    await this.callShim(namespace, id, 'Resume', { id });
  }

  async pids(namespace: string, id: string): Promise<Message[]> {
    const res = await this.callShim<{ processes?: Message[] }>(namespace, id, 'Pids', { id });
    return res.processes ?? [];
  }

  async update(namespace: string, id: string, resources: AnyValue | undefined, annotations: Record<string, string>): Promise<void> {
    await this.callShim(namespace, id, 'Update', { id, resources, annotations });
  }

  async stats(namespace: string, id: string): Promise<AnyValue | undefined> {
    const res = await this.callShim<{ stats?: AnyValue }>(namespace, id, 'Stats', { id });
    return res.stats;
  }

  /** Blocks until the process exits; a shim that dies meanwhile ends the wait with its record. */
  async wait(namespace: string, id: string, execId = ''): Promise<{ exitStatus: number; exitedAt: number }> {
    const record = this.record(namespace, id);
    if (record.dead && !execId) return { exitStatus: record.dead.status, exitedAt: record.dead.exitedAt };
    const waited = this.callShim<{ exit_status?: number; exited_at?: Timestamp }>(namespace, id, 'Wait', { id, exec_id: execId }, 0).then(
      (res) => ({ exitStatus: res.exit_status ?? 0, exitedAt: fromTimestamp(res.exited_at) ?? Date.now() }),
    );
    const died = record.deadSignal.then(() => ({ exitStatus: record.dead?.status ?? DEAD_SHIM_STATUS, exitedAt: record.dead?.exitedAt ?? Date.now() }));
    return Promise.race([waited, died]);
  }

  /** Bundles given back so far are kept for reuse or removed (at shutdown). */
  async bundlesSettled(): Promise<void> {
    await this.dirs.settled();
  }

  /** Detaches and gives back a bundle on a clean-up path, where a failure is reported, not thrown. */
  private dropBundle(bundle: Bundle, why: string): void {
    try {
      bundle.destroy();
    } catch (err) {
      this.log.error(why, { path: bundle.path, error: err });
    }
  }

  /** After a restart: find every bundle's shim again, in parallel, each with its own time budget. */
  async load(): Promise<void> {
    await this.dirs.clearStale();
    const bundles = await listBundles(this.dirs);
    await Promise.all(bundles.map((b) => this.loadOne(b)));
  }

  private async loadOne(bundle: Bundle): Promise<void> {
    const address = await bundle.readAddress();
    if (!address) {
      this.log.warn('removing bundle without a shim', { namespace: bundle.namespace, id: bundle.id });
      this.dropBundle(bundle, 'cannot remove bundle');
      return;
    }
    try {
      const shim = await this.shims.connect(address, SHIM_LOAD_TIMEOUT_MS);
      const state = await shim.call<StateResponse>('State', { id: bundle.id }, { namespace: bundle.namespace, timeoutMs: SHIM_LOAD_TIMEOUT_MS });
      this.track(bundle.namespace, bundle.id, bundle, shim, state.pid ?? 0);
    } catch (err) {
      this.log.warn('shim unreachable; reporting its task stopped', { namespace: bundle.namespace, id: bundle.id, error: err });
      const record = this.track(bundle.namespace, bundle.id, bundle, undefined, 0);
      await this.declareDead(record, 'shim unreachable after restart');
    }
  }

  private track(namespace: string, id: string, bundle: Bundle, shim: TaskShim | undefined, pid: number): TaskRecord {
    let markDead: () => void = () => undefined;
    const deadSignal = new Promise<void>((resolve) => (markDead = resolve));
    const record: TaskRecord = { namespace, id, bundle, shim, pid, deadSignal, markDead };
    this.tasks.set(key(namespace, id), record);
    shim?.closed.then(() => {
      if (!this.detached && this.tasks.get(key(namespace, id)) === record) void this.declareDead(record, 'shim exited');
    });
    return record;
  }

  /**
   * A shim is gone: the task is STOPPED with the status the shim recorded, or 255. Its container
   * may still run (it was re-parented), so the runtime's delete --force ends it, and one TaskExit
   * is published when the shim could not publish it.
   */
  private async declareDead(record: TaskRecord, reason: string): Promise<void> {
    if (record.dead) return;
    const recorded = await record.bundle.initExit();
    record.dead = recorded ?? { status: DEAD_SHIM_STATUS, exitedAt: Date.now(), reason };
    record.shim = undefined;
    record.markDead();
    if (!recorded) {
      await this.shims.cleanup(record.namespace, record.id, record.bundle).catch((err: unknown) =>
        this.log.warn('shim cleanup failed', { id: record.id, error: err }),
      );
      this.publish(record.namespace, '/tasks/exit', 'containerd.events.TaskExit', {
        container_id: record.id,
        id: record.id,
        pid: record.pid,
        exit_status: record.dead.status,
        exited_at: toTimestamp(record.dead.exitedAt),
      });
    }
  }

  private unknownState(record: TaskRecord): ProcessState {
    return { ...this.deadState(record), status: 'UNKNOWN', exitStatus: 0, exitedAt: undefined };
  }

  private deadState(record: TaskRecord): ProcessState {
    return {
      containerId: record.id,
      id: record.id,
      pid: record.pid,
      status: 'STOPPED',
      stdin: '',
      stdout: '',
      stderr: '',
      terminal: false,
      exitStatus: record.dead?.status ?? DEAD_SHIM_STATUS,
      exitedAt: record.dead?.exitedAt ?? Date.now(),
    };
  }

  private record(namespace: string, id: string): TaskRecord {
    validateIdentifier('container', id);
    const record = this.tasks.get(key(namespace, id));
    if (!record) throw notFound(`task ${id}`);
    return record;
  }

  private async callShim<T>(namespace: string, id: string, method: Parameters<TaskShim['call']>[0], req: Message, timeoutMs?: number): Promise<T> {
    const record = this.record(namespace, id);
    if (!record.shim) throw failedPrecondition(`task ${id}: its shim is gone (${record.dead?.reason ?? 'exited'}); delete the task`);
    try {
      return await record.shim.call<T>(method, req, { namespace, timeoutMs });
    } catch (err) {
      if (err instanceof BerthError && err.code === 'UNAVAILABLE') await this.declareDead(record, 'shim connection lost');
      throw err;
    }
  }
}

/**
 * The shim sees only the bundle, so a container's request for a shim of its own travels as a
 * spec annotation (the label itself is kept on the container record, as given).
 */
function bundleSpec(spec: Buffer, labels: Record<string, string>): Buffer {
  if (labels[DEDICATED_ANNOTATION] !== 'true') return spec;
  let parsed: { annotations?: Record<string, string> };
  try {
    parsed = JSON.parse(spec.toString('utf8')) as { annotations?: Record<string, string> };
  } catch {
    throw invalidArgument('container spec is not valid JSON');
  }
  parsed.annotations = { ...parsed.annotations, [DEDICATED_ANNOTATION]: 'true' };
  return Buffer.from(JSON.stringify(parsed));
}

function stateOf(containerId: string, s: StateResponse): ProcessState {
  return {
    containerId,
    id: s.exec_id || containerId,
    pid: s.pid ?? 0,
    status: s.status ?? 'UNKNOWN',
    stdin: s.stdin ?? '',
    stdout: s.stdout ?? '',
    stderr: s.stderr ?? '',
    terminal: s.terminal ?? false,
    exitStatus: s.exit_status ?? 0,
    exitedAt: fromTimestamp(s.exited_at),
  };
}

import { Code, TtrpcError } from '../services/ttrpc/status.js';
import type { ConsoleIO } from './console.js';
import type { OomWatcher } from './oom.js';
import type { Runtime } from './runtime.js';
import type { FifoIO, StdioPaths } from './stdio.js';

/** containerd.v1.types.Status names, as the wire enum spells them. */
export type ProcessState = 'CREATED' | 'RUNNING' | 'PAUSED' | 'STOPPED';

export interface Exit {
  status: number;
  exitedAt: Date;
}

/** Which of the legal moves of containerd's process state machine each state allows. */
const TRANSITIONS: Record<ProcessState, readonly ProcessState[]> = {
  CREATED: ['RUNNING', 'STOPPED'],
  RUNNING: ['PAUSED', 'STOPPED'],
  PAUSED: ['RUNNING', 'STOPPED'],
  STOPPED: [],
};

/** A task's init (execId '') or one of its exec processes. */
export class Proc {
  pid = 0;
  state: ProcessState = 'CREATED';
  exit: Exit | undefined;
  io: FifoIO | ConsoleIO | undefined;
  /**
   * Set while Start runs. A process can exit before the runtime's `start` returns; its exit is
   * held back until Start has moved it to RUNNING and published TaskStart, so Wait, State and the
   * event stream never show an exit before the start.
   */
  starting: Promise<void> | undefined;
  readonly exited: Promise<Exit>;
  private resolveExit!: (exit: Exit) => void;

  constructor(
    readonly containerId: string,
    readonly execId: string,
    readonly stdio: StdioPaths,
    readonly terminal: boolean,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /** The process id containerd reports: the exec id, or the container id for init. */
  get id(): string {
    return this.execId || this.containerId;
  }

  moveTo(next: ProcessState): void {
    if (next === this.state) return;
    if (!TRANSITIONS[this.state].includes(next)) {
      throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${this.id}: cannot go from ${this.state.toLowerCase()} to ${next.toLowerCase()}`);
    }
    this.state = next;
  }

  markExited(exit: Exit): void {
    this.state = 'STOPPED';
    this.exit = exit;
    this.resolveExit(exit);
  }
}

/** One task: its bundle, the runtime that manages it, its init and its execs. */
export class Container {
  readonly execs = new Map<string, Proc>();
  oom: OomWatcher | undefined;

  constructor(
    readonly id: string,
    readonly bundle: string,
    readonly runtime: Runtime,
    readonly init: Proc,
  ) {}

  process(execId: string): Proc {
    if (!execId) return this.init;
    const proc = this.execs.get(execId);
    if (!proc) throw new TtrpcError(Code.NOT_FOUND, `process ${execId}: not found`);
    return proc;
  }
}

import type { Message } from '../server/protos.js';

/** Methods of containerd.task.v2.Task that berthd calls on a shim. */
export type TaskMethod =
  | 'State'
  | 'Create'
  | 'Start'
  | 'Delete'
  | 'Pids'
  | 'Pause'
  | 'Resume'
  | 'Kill'
  | 'Exec'
  | 'ResizePty'
  | 'CloseIO'
  | 'Update'
  | 'Wait'
  | 'Stats'
  | 'Connect'
  | 'Shutdown';

export interface ShimCallOptions {
  /** The task's namespace, sent as containerd-namespace-ttrpc (shims require it). */
  namespace?: string;
  /** 0 means no deadline (Wait); otherwise a default applies. */
  timeoutMs?: number;
}

/** A connection to one shim process, which may serve the tasks of a whole group. */
export interface TaskShim {
  readonly address: string;
  call<T = Message>(method: TaskMethod, req: Message, opts?: ShimCallOptions): Promise<T>;
  /** Resolves when the connection is lost (the shim died or closed it). */
  readonly closed: Promise<void>;
  close(): void;
}

/** What a shim recorded about a process exit, read from disk when the shim itself is gone. */
export interface ExitRecord {
  status: number;
  exitedAt: number;
  reason?: string;
}

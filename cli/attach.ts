import { constants } from 'node:os';
import type { Api } from './client.js';
import type { StdioAttachment } from './stdio.js';

/** A task's init (execId undefined) or one of its exec'd processes. */
export interface ProcessRef {
  containerId: string;
  execId?: string;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

function ids(ref: ProcessRef): { container_id: string; exec_id?: string } {
  return ref.execId ? { container_id: ref.containerId, exec_id: ref.execId } : { container_id: ref.containerId };
}

/** Keeps the container's terminal the size of ours: now, and on every SIGWINCH. */
function followTerminalSize(api: Api, ref: ProcessRef): () => void {
  const resize = (): void => {
    const width = process.stdout.columns ?? 0;
    const height = process.stdout.rows ?? 0;
    api.unary('tasks', 'ResizePty', { ...ids(ref), width, height }).catch(() => undefined);
  };
  resize();
  process.stdout.on('resize', resize);
  return () => process.stdout.off('resize', resize);
}

/** Signals sent to the CLI go to the process instead, as ctr does in attached mode. */
function forwardSignals(api: Api, ref: ProcessRef): () => void {
  const handlers = FORWARDED.map((name) => {
    const handler = (): void => {
      api.unary('tasks', 'Kill', { ...ids(ref), signal: constants.signals[name] }).catch(() => undefined);
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return () => handlers.forEach(([name, handler]) => process.off(name, handler));
}

/**
 * Starts a created process and stays attached until it has exited and its output is drained;
 * resolves with its exit status. Wait is issued before Start so no exit can slip between them.
 * The process record itself is deleted by the caller (Tasks/Delete vs DeleteProcess differ).
 */
export async function startAttached(api: Api, ref: ProcessRef, stdio: StdioAttachment, terminal: boolean): Promise<number> {
  const waited = api.unary<{ exit_status?: number }>('tasks', 'Wait', ids(ref));
  // An unobserved rejection would crash the process before we get to await it.
  waited.catch(() => undefined);
  const stopForwarding = forwardSignals(api, ref);
  let stopResizing = (): void => undefined;
  try {
    await api.unary('tasks', 'Start', ids(ref));
    stdio.releaseKeepers();
    if (terminal && process.stdout.isTTY) stopResizing = followTerminalSize(api, ref);
    // The shim keeps stdin open until told otherwise (so the process does not see EOF early).
    void stdio.inputDone.then(() => api.unary('tasks', 'CloseIO', { ...ids(ref), stdin: true }).catch(() => undefined));
    const { exit_status = 0 } = await waited;
    await stdio.outputsDone;
    return exit_status;
  } finally {
    stopResizing();
    stopForwarding();
    stdio.close();
  }
}

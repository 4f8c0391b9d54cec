import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';

/** What a starting shim's readiness wait says when it fails. */
export interface ReadinessMessages {
  timeout: string;
  /** For a shim that exited first; `status` is its exit code or signal. */
  exited(status: string): string;
}

/**
 * Waits for the byte a starting shim writes on its readiness pipe once it serves, failing when
 * the shim exits first or `timeoutMs` passes. Used by `berth-shim start` and berthd's spare.
 */
export function shimReady(child: ChildProcess, ready: EventEmitter, timeoutMs: number, messages: ReadinessMessages): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(messages.timeout)), timeoutMs);
    ready.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(messages.exited(String(code ?? signal))));
    });
  });
}

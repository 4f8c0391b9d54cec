import { join } from 'node:path';

/** Root of berth's runtime state; tests point it at a temp dir through BERTH_STATE_DIR. */
export function stateDir(): string {
  return process.env.BERTH_STATE_DIR || '/run/berth';
}

/** The ttrpc socket file of the shim serving group `hash`. */
export function shimSocketPath(hash: string): string {
  return join(stateDir(), 's', hash);
}

/** Per-shim files other than the socket (lock, log), kept out of s/ so s/ holds sockets only. */
export function shimFile(hash: string, suffix: 'lock' | 'log'): string {
  return join(stateDir(), 'shims', `${hash}.${suffix}`);
}

/** Console sockets for terminal processes; short names because sun_path is 108 bytes. */
export function consoleDir(): string {
  return join(stateDir(), 'console');
}

/**
 * The OCI runtime's --root. Per namespace, because task ids are unique only within one and the
 * runtime keys its state by id.
 */
export function runtimeRoot(namespace: string): string {
  return join(stateDir(), 'runtime', namespace);
}

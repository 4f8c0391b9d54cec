import { randomBytes } from 'node:crypto';
import { run, type RunResult } from './exec.js';

export interface CtrOptions {
  /** containerd namespace (-n); "default" like ctr itself. */
  namespace?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export type CtrResult = RunResult;

/**
 * Runs the stock /usr/bin/ctr against `address`. Never throws on a non-zero exit: tests assert
 * on `code`, `stdout` and `stderr`. --connect-timeout keeps ctr from blocking 10 s when the
 * socket is missing (its default gRPC dial timeout).
 */
export function ctr(address: string, args: readonly string[], opts: CtrOptions = {}): Promise<CtrResult> {
  const global = ['--address', address, '--connect-timeout', '5s', '-n', opts.namespace ?? 'default'];
  return run('/usr/bin/ctr', [...global, ...args], {
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 120_000,
    env: opts.env,
  });
}

/**
 * A fresh name for a namespace or container id. Cgroups (/<namespace>/<id>) and some runtime
 * state are host-global, so tests running side by side must not reuse names.
 */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

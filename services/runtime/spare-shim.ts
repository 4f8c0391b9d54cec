import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { packagePath } from '../paths.js';
import { SHIM_NODE_FLAGS } from '../../shim/protocol.js';
import { shimReady } from '../../shim/readiness.js';

const READY_TIMEOUT_MS = 10_000;

/**
 * One berth-shim started ahead of need (`berth-shim spare`): Node and the shim's modules are
 * loaded while nothing waits, so the first task of a new pod or namespace does not wait ~100 ms
 * for them. It is handed a group by writing the `serve` command line to its stdin; if berthd
 * exits first, its stdin ends and it exits unused.
 */
export class SpareShim {
  private child: ChildProcess | undefined;

  constructor(
    private readonly state: string,
    private readonly env: () => NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  warm(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const logDir = join(this.state, 'shims');
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
    const logFd = openSync(join(logDir, `spare-${randomBytes(4).toString('hex')}.log`), 'a', 0o600);
    try {
      const child = spawn(process.execPath, [...SHIM_NODE_FLAGS, packagePath('dist', 'shim', 'main.js'), 'spare'], {
        detached: true, // its own session: once it serves a group it must outlive berthd
        stdio: ['pipe', logFd, logFd, 'pipe'],
        cwd: this.state,
        env: this.env(),
      });
      child.on('error', (err) => this.log.warn('spare shim failed to start', { error: err }));
      child.on('exit', () => {
        if (this.child === child) this.child = undefined;
      });
      this.child = child;
    } finally {
      closeSync(logFd);
    }
  }

  /** Hands the spare a group to serve; false if there was no live spare or it did not come up. */
  async take(serveArgs: string[]): Promise<boolean> {
    const child = this.child;
    this.child = undefined;
    const ready = child?.stdio[3] as Readable | undefined;
    if (!child || !child.stdin || !ready || child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const serving = shimReady(child, ready, READY_TIMEOUT_MS, {
        timeout: 'spare shim did not become ready',
        exited: (status) => `spare shim exited (${status}) before serving`,
      });
      child.stdin.end(`${JSON.stringify(serveArgs)}\n`);
      await serving;
      return true;
    } catch (err) {
      this.log.warn('spare shim unusable; starting a shim the usual way', { error: err });
      child.kill('SIGKILL');
      return false;
    } finally {
      ready.destroy();
      child.unref();
    }
  }

  stop(): void {
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}

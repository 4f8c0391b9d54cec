import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { destroyTree } from './cleanup.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { ctr } from './ctr.js';
import { scratchDir } from './scratch.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Daemon output kept in memory; the tail is what explains a failure. */
const MAX_LOG_CHARS = 4 * 1024 * 1024;

export interface BerthdOptions {
  /** Passed as --log-level; "debug" by default so failing tests come with useful logs. */
  logLevel?: string;
  /** Extra command-line arguments after the standard ones. */
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** How long to wait for `ctr version` to succeed after spawning. */
  readyTimeoutMs?: number;
  /** How long stop()/restart() wait after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
  binary?: string;
}

export interface Berthd {
  /** The instance's private dir holding root/, state/ and the socket. */
  readonly dir: string;
  readonly address: string;
  readonly root: string;
  readonly state: string;
  /** The current daemon process; replaced by restart(). */
  readonly proc: ChildProcess;
  /** SIGTERM (SIGKILL after stopTimeoutMs), then kill leftovers, unmount and remove the dirs. */
  stop(): Promise<void>;
  /** SIGKILL the daemon only: shims, containers and dirs stay, ready for restart(). */
  kill9(): Promise<void>;
  /** SIGTERM the daemon if it runs, start it again on the same dirs and wait until ready. */
  restart(): Promise<void>;
  /** Everything the daemon wrote to stdout and stderr, across restarts. */
  logs(): string;
}

/** A process that failed to spawn has no pid and never emits 'exit'. */
function exited(proc: ChildProcess): boolean {
  return proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null;
}

function exitOf(proc: ChildProcess): Promise<void> {
  return exited(proc) ? Promise.resolve() : new Promise((resolve) => proc.once('exit', () => resolve()));
}

class BerthdInstance implements Berthd {
  readonly root: string;
  readonly state: string;
  readonly address: string;
  #proc: ChildProcess | undefined;
  #log = '';
  #starts = 0;
  #stopped = false;

  constructor(
    readonly dir: string,
    private readonly opts: BerthdOptions,
  ) {
    this.root = join(dir, 'root');
    this.state = join(dir, 'state');
    this.address = join(dir, 'state', 'berth.sock');
  }

  get proc(): ChildProcess {
    if (!this.#proc) throw new Error('berthd was never started');
    return this.#proc;
  }

  logs(): string {
    return this.#log;
  }

  #append(chunk: string): void {
    this.#log += chunk;
    if (this.#log.length > MAX_LOG_CHARS) this.#log = this.#log.slice(-MAX_LOG_CHARS);
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error('berthd instance was stopped; start a new one');
    const args = ['--root', this.root, '--state', this.state, '--address', this.address];
    args.push('--log-level', this.opts.logLevel ?? 'debug', ...(this.opts.args ?? []));
    const binary = this.opts.binary ?? join(REPO_ROOT, 'bin', 'berthd');
    this.#append(`--- berthd start #${++this.#starts}: ${binary} ${args.join(' ')}\n`);
    const proc = spawn(binary, args, { cwd: REPO_ROOT, env: this.opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    if (proc.pid === undefined) {
      const [err] = (await once(proc, 'error')) as [Error];
      throw new Error(`cannot run ${binary}: ${err.message}`);
    }
    proc.stdout?.setEncoding('utf8').on('data', (s: string) => this.#append(s));
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => this.#append(s));
    proc.on('exit', (code, sig) => this.#append(`--- berthd exited: ${code ?? sig}\n`));
    await this.#waitReady(proc, this.opts.readyTimeoutMs ?? 20_000);
  }

  async #waitReady(proc: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (exited(proc)) throw new Error(`berthd exited before it was ready\n${this.#log}`);
      if (existsSync(this.address)) {
        const r = await ctr(this.address, ['version'], { timeoutMs: 5_000 });
        if (r.code === 0) return;
        last = r.stderr;
      }
      await sleep(25);
    }
    throw new Error(`berthd not ready after ${timeoutMs} ms (last ctr error: ${last.trim()})\n${this.#log}`);
  }

  async #terminate(): Promise<void> {
    const proc = this.#proc;
    if (!proc || exited(proc)) return;
    proc.kill('SIGTERM');
    const timeout = sleep(this.opts.stopTimeoutMs ?? 10_000).then(() => 'timeout' as const);
    if ((await Promise.race([exitOf(proc), timeout])) === 'timeout') {
      this.#append('--- berthd ignored SIGTERM; sending SIGKILL\n');
      proc.kill('SIGKILL');
      await exitOf(proc);
    }
  }

  async kill9(): Promise<void> {
    const proc = this.#proc;
    if (!proc || exited(proc)) return;
    proc.kill('SIGKILL');
    await exitOf(proc);
  }

  async restart(): Promise<void> {
    await this.#terminate();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#terminate();
    await destroyTree(this.dir);
  }
}

/**
 * Starts ./bin/berthd on fresh root and state dirs of its own and resolves once `ctr version`
 * succeeds against it. Always pair with stop() (e.g. in afterAll); global teardown also removes
 * whatever a crashed test left under the run dir.
 */
export async function startBerthd(opts: BerthdOptions = {}): Promise<Berthd> {
  const dir = await scratchDir('i-');
  const instance = new BerthdInstance(dir, opts);
  await mkdir(instance.root, { mode: 0o700 });
  await mkdir(instance.state, { mode: 0o700 });
  try {
    await instance.start();
  } catch (e) {
    await instance.stop();
    throw e;
  }
  return instance;
}

/** Lines of daemon log printed when a test using useBerthd() fails. */
const FAILURE_LOG_LINES = 200;

/**
 * One berthd for the enclosing describe block: started in beforeAll, stopped in afterAll, and
 * the tail of its log printed after any failing test. Call the returned function inside tests.
 */
export function useBerthd(opts: BerthdOptions = {}): () => Berthd {
  let daemon: Berthd | undefined;
  beforeAll(async () => {
    daemon = await startBerthd(opts);
  });
  afterEach((ctx) => {
    if (daemon && ctx.task.result?.state === 'fail') {
      const tail = daemon.logs().split('\n').slice(-FAILURE_LOG_LINES).join('\n');
      process.stderr.write(`--- berthd log (last ${FAILURE_LOG_LINES} lines) for "${ctx.task.name}":\n${tail}\n`);
    }
  });
  afterAll(async () => {
    await daemon?.stop();
  });
  return () => {
    if (!daemon) throw new Error('berthd is not running (used outside a test, or beforeAll failed)');
    return daemon;
  };
}

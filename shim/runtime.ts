import { spawn, type StdioOptions } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TtrpcError, Code } from '../services/ttrpc/status.js';
import type { Reaper } from './reaper.js';

/** fds for the runtime's stdin, stdout and stderr; the container process inherits them. */
export type Stdio = [number, number, number];

interface RunOptions {
  stdio?: Stdio;
  /** Where the runtime writes its JSON log, read back to explain a failure. */
  logFile?: string;
}

/**
 * The OCI runtime's command line (runc's, which berth-runtime shares), run once per operation.
 * Errors carry the runtime's own message from its --log file or stderr.
 */
export class Runtime {
  constructor(
    readonly binary: string,
    readonly root: string,
    private readonly reaper?: Reaper,
  ) {}

  async create(id: string, bundle: string, pidFile: string, stdio: Stdio, consoleSocket?: string): Promise<void> {
    const args = ['create', '--bundle', bundle, '--pid-file', pidFile];
    if (consoleSocket) args.push('--console-socket', consoleSocket);
    await this.run([...args, id], { stdio, logFile: join(bundle, 'log.json') });
  }

  async start(id: string): Promise<void> {
    await this.run(['start', id]);
  }

  async exec(id: string, processFile: string, pidFile: string, stdio: Stdio, consoleSocket?: string): Promise<void> {
    const args = ['exec', '--detach', '--process', processFile, '--pid-file', pidFile];
    if (consoleSocket) args.push('--console-socket', consoleSocket);
    await this.run([...args, id], { stdio, logFile: `${pidFile}.log` });
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    await this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, force: boolean): Promise<void> {
    await this.run(['delete', ...(force ? ['--force'] : []), id]);
  }

  async pause(id: string): Promise<void> {
    await this.run(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.run(['resume', id]);
  }

  async update(id: string, resourcesFile: string): Promise<void> {
    await this.run(['update', '--resources', resourcesFile, id]);
  }

  async ps(id: string): Promise<number[]> {
    const out = await this.run(['ps', '--format', 'json', id]);
    const pids: unknown = JSON.parse(out || '[]');
    return Array.isArray(pids) ? pids.filter((p): p is number => typeof p === 'number') : [];
  }

  private async run(args: string[], opts: RunOptions = {}): Promise<string> {
    const global = ['--root', this.root];
    if (opts.logFile) {
      await rm(opts.logFile, { force: true });
      global.push('--log', opts.logFile, '--log-format', 'json');
    }
    const stdio: StdioOptions = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
    const child = spawn(this.binary, [...global, ...args], { stdio, cwd: '/' });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.reaper?.spawned(child.pid, exited.catch(() => undefined));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let result;
    try {
      result = await exited;
    } catch (e) {
      throw new TtrpcError(Code.INTERNAL, `${this.binary} ${args[0]}: ${(e as Error).message}`);
    }
    if (result.code === 0) return Buffer.concat(out).toString();
    const why = (await logError(opts.logFile)) || Buffer.concat(err).toString().trim() || `exit ${result.code ?? result.signal}`;
    throw runtimeError(`${this.binary} ${args[0]} ${args[args.length - 1]}: ${why}`);
  }
}

/** The last error-level message of a runtime's JSON log (one object per line, runc style). */
async function logError(file: string | undefined): Promise<string> {
  if (!file) return '';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return '';
  }
  let last = '';
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === 'error' || entry.level === 'fatal') && entry.msg) last = entry.msg;
    } catch {
      continue;
    }
  }
  return last;
}

/** Maps the runtime's "does not exist" to NOT_FOUND so callers can treat it as already gone. */
function runtimeError(message: string): TtrpcError {
  const missing = /does not exist|not found|no such container/i.test(message);
  return new TtrpcError(missing ? Code.NOT_FOUND : Code.UNKNOWN, message);
}

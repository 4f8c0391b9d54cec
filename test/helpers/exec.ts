import { spawn } from 'node:child_process';

export interface RunResult {
  /** Exit code; null when the process was killed by a signal or could not be started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs a command to completion and reports how it ended. Never throws: tests assert on failures
 * of the tools they drive, so a failure is data, not an exception.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError = '';
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // The child may exit before reading its input; EPIPE here is not the test's concern.
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      spawnError = `${cmd}: ${e.message}\n`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: spawnError + Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    child.stdin.end(opts.input);
  });
}

/** Like run(), but throws with the command's output when it does not exit 0. For setup steps. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const how = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')} ${how}\n${r.stderr}${r.stdout}`);
  }
  return r;
}

import { startAttached } from '../attach.js';
import { containerSpec, getContainer, getTask } from '../container.js';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { createFifos } from '../fifo.js';
import { generateId } from '../ids.js';
import { parseEnv } from '../run-options.js';
import { mergeEnv, type OciProcess, type OciUser } from '../spec.js';
import { StdioAttachment } from '../stdio.js';
import { PROCESS_TYPE_URL } from '../types.js';

export interface ExecOptions {
  tty?: boolean;
  interactive?: boolean;
  env: string[];
  user?: string;
  cwd?: string;
}

function parseNumericUser(text: string): OciUser {
  const match = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!match) throw new CliError(`--user "${text}": exec takes a numeric uid[:gid]`);
  return { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
}

/** The exec'd process inherits the container's process (env, caps, rlimits), as with ctr. */
function execProcess(base: OciProcess, command: string[], opts: ExecOptions): OciProcess {
  const terminal = Boolean(opts.tty);
  return {
    ...base,
    terminal,
    args: command,
    env: mergeEnv(base.env, terminal ? ['TERM=xterm'] : [], parseEnv(opts.env)),
    cwd: opts.cwd ?? base.cwd,
    user: opts.user !== undefined ? parseNumericUser(opts.user) : base.user,
  };
}

export async function execInContainer(ctx: Context, id: string, command: string[], opts: ExecOptions): Promise<number> {
  const spec = containerSpec(await getContainer(ctx.api, id));
  const task = await getTask(ctx.api, id);
  if (task?.status !== 'RUNNING') throw new CliError(`container "${id}" is not running`);
  const process = execProcess(spec.process, command, opts);
  const execId = `exec-${generateId()}`;
  const terminal = process.terminal;
  const fifos = await createFifos(execId, { stdin: terminal || Boolean(opts.interactive), stderr: !terminal });
  try {
    const stdio = new StdioAttachment(fifos, terminal);
    try {
      await ctx.api.unary('tasks', 'Exec', {
        container_id: id,
        exec_id: execId,
        stdin: fifos.stdin,
        stdout: fifos.stdout,
        stderr: fifos.stderr,
        terminal,
        spec: { type_url: PROCESS_TYPE_URL, value: Buffer.from(JSON.stringify(process)) },
      });
    } catch (err) {
      stdio.close();
      throw err;
    }
    try {
      return (await startAttached(ctx.api, { containerId: id, execId }, stdio, terminal)) & 0xff;
    } finally {
      await ctx.api.unary('tasks', 'DeleteProcess', { container_id: id, exec_id: execId }).catch(() => undefined);
    }
  } finally {
    await fifos.remove();
  }
}

import type { Context } from '../context.js';
import { getContainer, getTask } from '../container.js';
import { CliError } from '../errors.js';
import { parseSignal } from '../signals.js';

export async function killContainers(ctx: Context, ids: string[], opts: { signal: string; all?: boolean }): Promise<void> {
  const signal = parseSignal(opts.signal);
  for (const id of ids) {
    await getContainer(ctx.api, id);
    if (!(await getTask(ctx.api, id))) throw new CliError(`container "${id}" is not running`);
    await ctx.api.unary('tasks', 'Kill', { container_id: id, signal, all: Boolean(opts.all) });
    process.stdout.write(`${id}\n`);
  }
}

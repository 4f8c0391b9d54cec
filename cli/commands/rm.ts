import type { Context } from '../context.js';
import { deleteContainer, deleteTask, getContainer, getTask, isStopped } from '../container.js';
import { CliError } from '../errors.js';
import { parseSignal } from '../signals.js';

/** Removes containers with their (stopped) tasks and snapshots; --force kills running ones. */
export async function removeContainers(ctx: Context, ids: string[], opts: { force?: boolean }): Promise<void> {
  for (const id of ids) {
    const container = await getContainer(ctx.api, id);
    const task = await getTask(ctx.api, id);
    if (task) {
      if (!isStopped(task)) {
        if (!opts.force) throw new CliError(`container "${id}" is running; stop it first or use --force`);
        await ctx.api.unary('tasks', 'Kill', { container_id: id, signal: parseSignal('SIGKILL'), all: true });
        await ctx.api.unary('tasks', 'Wait', { container_id: id });
      }
      await deleteTask(ctx.api, id);
    }
    await deleteContainer(ctx.api, container);
    process.stdout.write(`${id}\n`);
  }
}

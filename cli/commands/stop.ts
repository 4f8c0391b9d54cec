import { setTimeout as sleep } from 'node:timers/promises';
import type { Api } from '../client.js';
import type { Context } from '../context.js';
import { getContainer, getTask, isStopped } from '../container.js';
import { CliError } from '../errors.js';
import { parseSignal } from '../signals.js';

const STOP_SIGNAL_LABEL = 'io.containerd.image.config.stop-signal';

/** Resolves true if the task exits within `ms`; the Wait call is cancelled otherwise. */
async function exitsWithin(api: Api, id: string, ms: number): Promise<boolean> {
  const waited = api.unary('tasks', 'Wait', { container_id: id }).then(() => true);
  const timer = new AbortController();
  try {
    return await Promise.race([waited, sleep(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
    waited.catch(() => undefined);
  }
}

/**
 * docker-style stop: the image's stop signal (label set by run, SIGTERM by default), then SIGKILL
 * once --time seconds have passed. The stopped task stays, with its exit status, until `rm`.
 */
export async function stopContainers(ctx: Context, ids: string[], opts: { time: string }): Promise<void> {
  const seconds = Number(opts.time);
  if (!Number.isFinite(seconds) || seconds < 0) throw new CliError(`--time "${opts.time}": want a number of seconds`);
  for (const id of ids) {
    const container = await getContainer(ctx.api, id);
    const task = await getTask(ctx.api, id);
    if (task && !isStopped(task)) {
      await ctx.api.unary('tasks', 'Kill', { container_id: id, signal: parseSignal(container.labels?.[STOP_SIGNAL_LABEL] || 'SIGTERM') });
      if (!(await exitsWithin(ctx.api, id, seconds * 1000))) {
        await ctx.api.unary('tasks', 'Kill', { container_id: id, signal: parseSignal('SIGKILL'), all: true });
        await ctx.api.unary('tasks', 'Wait', { container_id: id });
      }
    }
    process.stdout.write(`${id}\n`);
  }
}

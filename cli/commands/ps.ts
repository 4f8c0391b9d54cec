import type { Context } from '../context.js';
import { age, isoTime, printJson, printTable } from '../output.js';
import type { Container, Process } from '../types.js';

interface Row {
  id: string;
  image: string;
  status: string;
  pid: number | null;
  exitStatus: number | null;
  createdAt: string;
}

function statusOf(task: Process | undefined): string {
  if (!task) return 'created';
  const status = (task.status ?? 'UNKNOWN').toLowerCase();
  return task.status === 'STOPPED' ? `${status} (${task.exit_status ?? 0})` : status;
}

/** Containers with their task's state: one listing instead of ctr's containers ls + task ls. */
export async function listContainers(ctx: Context, opts: { quiet?: boolean }): Promise<void> {
  const [{ containers = [] }, { tasks = [] }] = await Promise.all([
    ctx.api.unary<{ containers?: Container[] }>('containers', 'List', {}),
    ctx.api.unary<{ tasks?: Process[] }>('tasks', 'List', {}),
  ]);
  const byId = new Map(tasks.map((t) => [t.container_id ?? t.id ?? '', t]));
  const sorted = [...containers].sort((a, b) => (a.created_at?.seconds ?? 0) - (b.created_at?.seconds ?? 0));
  if (opts.quiet && !ctx.json) return void process.stdout.write(sorted.map((c) => `${c.id}\n`).join(''));
  const rows: Row[] = sorted.map((c) => {
    const task = byId.get(c.id);
    return {
      id: c.id,
      image: c.image ?? '',
      status: task ? (task.status ?? 'UNKNOWN').toLowerCase() : 'created',
      pid: task?.pid ?? null,
      exitStatus: task?.status === 'STOPPED' ? (task.exit_status ?? 0) : null,
      createdAt: isoTime(c.created_at),
    };
  });
  if (ctx.json) return printJson(rows);
  printTable(
    ['CONTAINER', 'IMAGE', 'STATUS', 'PID', 'CREATED'],
    sorted.map((c) => {
      const task = byId.get(c.id);
      return [c.id, c.image ?? '', statusOf(task), task?.pid ? String(task.pid) : '-', age(c.created_at)];
    }),
  );
}

import { BerthError } from '../errors.js';
import type { AnyValue } from '../containers/service.js';
import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import { compileFilters } from '../filters/filter.js';
import type { ExitResult, ProcessState, TaskService } from './service.js';
import { mountsOf, str } from '../server/fields.js';

const processMessage = (p: ProcessState): Message => ({
  container_id: p.containerId,
  id: p.id,
  pid: p.pid,
  status: p.status,
  stdin: p.stdin,
  stdout: p.stdout,
  stderr: p.stderr,
  terminal: p.terminal,
  exit_status: p.exitStatus,
  exited_at: p.exitedAt === undefined ? undefined : toTimestamp(p.exitedAt),
});

const exitMessage = (id: string, r: ExitResult): Message => ({
  id,
  pid: r.pid,
  exit_status: r.exitStatus,
  exited_at: toTimestamp(r.exitedAt),
});

export function tasksGrpc(tasks: TaskService, kit: HandlerKit): ServiceImpl {
  return {
    Create: kit.unary('Tasks/Create', async (req, ctx) => {
      if ((req.checkpoint as { digest?: string } | undefined)?.digest) {
        throw new BerthError('UNIMPLEMENTED', 'restoring a task from a checkpoint is not supported by berthd');
      }
      const containerId = str(req.container_id);
      const { pid } = await tasks.create(requireNamespace(ctx), {
        containerId,
        rootfs: mountsOf(req.rootfs),
        stdin: str(req.stdin),
        stdout: str(req.stdout),
        stderr: str(req.stderr),
        terminal: Boolean(req.terminal),
        options: req.options as AnyValue | undefined,
      });
      return { container_id: containerId, pid };
    }),
    Start: kit.unary('Tasks/Start', async (req, ctx) => tasks.start(requireNamespace(ctx), str(req.container_id), str(req.exec_id))),
    Delete: kit.unary('Tasks/Delete', async (req, ctx) => exitMessage('', await tasks.delete(requireNamespace(ctx), str(req.container_id)))),
    DeleteProcess: kit.unary('Tasks/DeleteProcess', async (req, ctx) =>
      exitMessage(str(req.exec_id), await tasks.deleteProcess(requireNamespace(ctx), str(req.container_id), str(req.exec_id))),
    ),
    Get: kit.unary('Tasks/Get', async (req, ctx) => ({
      process: processMessage(await tasks.get(requireNamespace(ctx), str(req.container_id), str(req.exec_id))),
    })),
    List: kit.unary('Tasks/List', async (req, ctx) => {
      const match = compileFilters(req.filter ? [str(req.filter)] : []);
      const all = await tasks.list(requireNamespace(ctx));
      const selected = all.filter((p) =>
        match((path) => (path.length === 1 ? ({ id: p.id, container_id: p.containerId, status: p.status } as Record<string, string>)[path[0] ?? ''] : undefined)),
      );
      return { tasks: selected.map(processMessage) };
    }),
    Kill: kit.unary('Tasks/Kill', async (req, ctx) => {
      await tasks.kill(requireNamespace(ctx), str(req.container_id), str(req.exec_id), Number(req.signal ?? 0), Boolean(req.all));
      return {};
    }),
    Exec: kit.unary('Tasks/Exec', async (req, ctx) => {
      await tasks.exec(requireNamespace(ctx), str(req.container_id), {
        execId: str(req.exec_id),
        stdin: str(req.stdin),
        stdout: str(req.stdout),
        stderr: str(req.stderr),
        terminal: Boolean(req.terminal),
        spec: req.spec as AnyValue,
      });
      return {};
    }),
    ResizePty: kit.unary('Tasks/ResizePty', async (req, ctx) => {
      await tasks.resizePty(requireNamespace(ctx), str(req.container_id), str(req.exec_id), Number(req.width ?? 0), Number(req.height ?? 0));
      return {};
    }),
    CloseIO: kit.unary('Tasks/CloseIO', async (req, ctx) => {
      await tasks.closeIO(requireNamespace(ctx), str(req.container_id), str(req.exec_id), Boolean(req.stdin));
      return {};
    }),
    Pause: kit.unary('Tasks/Pause', async (req, ctx) => {
      await tasks.pause(requireNamespace(ctx), str(req.container_id));
      return {};
    }),
    Resume: kit.unary('Tasks/Resume', async (req, ctx) => {
      await tasks.resume(requireNamespace(ctx), str(req.container_id));
      return {};
    }),
    ListPids: kit.unary('Tasks/ListPids', async (req, ctx) => ({ processes: await tasks.pids(requireNamespace(ctx), str(req.container_id)) })),
    Checkpoint: kit.unary('Tasks/Checkpoint', () => {
      throw new BerthError('UNIMPLEMENTED', 'checkpointing tasks is not supported by berthd (no CRIU integration)');
    }),
    Update: kit.unary('Tasks/Update', async (req, ctx) => {
      await tasks.update(requireNamespace(ctx), str(req.container_id), req.resources as AnyValue | undefined, (req.annotations ?? {}) as Record<string, string>);
      return {};
    }),
    Metrics: kit.unary('Tasks/Metrics', async (req, ctx) => {
      const ns = requireNamespace(ctx);
      const match = compileFilters(req.filters as string[]);
      const selected = (await tasks.list(ns)).filter((p) => match((path) => (path[0] === 'id' && path.length === 1 ? p.id : undefined)));
      const metrics = await Promise.all(
        selected.map(async (p) => ({ timestamp: toTimestamp(Date.now()), id: p.id, data: await tasks.stats(ns, p.id) })),
      );
      return { metrics };
    }),
    Wait: kit.unary('Tasks/Wait', async (req, ctx) => {
      const r = await tasks.wait(requireNamespace(ctx), str(req.container_id), str(req.exec_id));
      return { exit_status: r.exitStatus, exited_at: toTimestamp(r.exitedAt) };
    }),
  };
}

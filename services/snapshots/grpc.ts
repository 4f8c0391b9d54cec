import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace, type CallContext } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import type { SnapshotService } from './service.js';
import type { SnapshotInfo } from './types.js';
import { str } from '../server/fields.js';

const LIST_BATCH = 100;

const infoMessage = (info: SnapshotInfo): Message => ({
  name: info.name,
  parent: info.parent,
  kind: info.kind.toUpperCase(),
  created_at: toTimestamp(info.createdAt),
  updated_at: toTimestamp(info.updatedAt),
  labels: info.labels,
});

export function snapshotsGrpc(snapshots: SnapshotService, kit: HandlerKit): ServiceImpl {
  const ns = (req: Message, ctx: CallContext): string => {
    snapshots.checkSnapshotter(req.snapshotter as string | undefined);
    return requireNamespace(ctx);
  };
  return {
    Prepare: kit.unary('Snapshots/Prepare', (req, ctx) => ({
      mounts: snapshots.prepare(ns(req, ctx), str(req.key), str(req.parent), req.labels as Record<string, string>, ctx.lease),
    })),
    View: kit.unary('Snapshots/View', (req, ctx) => ({
      mounts: snapshots.view(ns(req, ctx), str(req.key), str(req.parent), req.labels as Record<string, string>, ctx.lease),
    })),
    Mounts: kit.unary('Snapshots/Mounts', (req, ctx) => ({ mounts: snapshots.mounts(ns(req, ctx), str(req.key)) })),
    Commit: kit.unary('Snapshots/Commit', (req, ctx) => {
      snapshots.commit(ns(req, ctx), str(req.name), str(req.key), req.labels as Record<string, string>, ctx.lease);
      return {};
    }),
    Remove: kit.unary('Snapshots/Remove', async (req, ctx) => {
      await snapshots.remove(ns(req, ctx), str(req.key));
      return {};
    }),
    Stat: kit.unary('Snapshots/Stat', (req, ctx) => ({ info: infoMessage(snapshots.stat(ns(req, ctx), str(req.key))) })),
    Update: kit.unary('Snapshots/Update', (req, ctx) => {
      const info = (req.info ?? {}) as { name?: string; labels?: Record<string, string> };
      const mask = req.update_mask as { paths?: string[] } | undefined;
      return { info: infoMessage(snapshots.update(ns(req, ctx), info.name ?? '', info.labels ?? {}, mask?.paths)) };
    }),
    List: kit.serverStream('Snapshots/List', async (req, ctx, send) => {
      const infos = snapshots.list(ns(req, ctx), req.filters as string[]);
      for (let i = 0; i < infos.length; i += LIST_BATCH) await send({ info: infos.slice(i, i + LIST_BATCH).map(infoMessage) });
    }),
    Usage: kit.unary('Snapshots/Usage', async (req, ctx) => {
      const { size, inodes } = await snapshots.usage(ns(req, ctx), str(req.key));
      return { size, inodes };
    }),
    Cleanup: kit.unary('Snapshots/Cleanup', async (req, ctx) => {
      ns(req, ctx);
      await snapshots.cleanup();
      return {};
    }),
  };
}

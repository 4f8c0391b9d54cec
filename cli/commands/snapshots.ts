import type { Context } from '../context.js';
import { isoTime, printJson, printTable } from '../output.js';
import type { SnapshotInfo } from '../types.js';

export async function listSnapshots(ctx: Context, opts: { snapshotter: string }): Promise<void> {
  const pages = await ctx.api.collect<{ info?: SnapshotInfo[] }>('snapshots', 'List', { snapshotter: opts.snapshotter });
  const snapshots = pages.flatMap((p) => p.info ?? []);
  if (ctx.json) {
    return printJson(
      snapshots.map((s) => ({
        key: s.name,
        parent: s.parent ?? '',
        kind: s.kind ?? 'UNKNOWN',
        createdAt: isoTime(s.created_at),
        labels: s.labels ?? {},
      })),
    );
  }
  printTable(
    ['KEY', 'PARENT', 'KIND'],
    snapshots.map((s) => [s.name, s.parent ?? '', s.kind ?? 'UNKNOWN']),
  );
}

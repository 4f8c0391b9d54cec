import type { Context } from '../context.js';
import { age, formatLabels, humanSize, isoTime, printJson, printTable } from '../output.js';
import type { ContentInfo } from '../types.js';

export async function listContent(ctx: Context, opts: { quiet?: boolean }): Promise<void> {
  const pages = await ctx.api.collect<{ info?: ContentInfo[] }>('content', 'List', {});
  const blobs = pages.flatMap((p) => p.info ?? []);
  if (ctx.json) {
    return printJson(
      blobs.map((b) => ({ digest: b.digest, size: b.size ?? 0, createdAt: isoTime(b.created_at), labels: b.labels ?? {} })),
    );
  }
  if (opts.quiet) return void process.stdout.write(blobs.map((b) => `${b.digest}\n`).join(''));
  printTable(
    ['DIGEST', 'SIZE', 'AGE', 'LABELS'],
    blobs.map((b) => [b.digest, humanSize(b.size ?? 0), age(b.created_at), formatLabels(b.labels)]),
  );
}

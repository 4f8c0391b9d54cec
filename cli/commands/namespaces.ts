import type { Context } from '../context.js';
import { formatLabels, printJson, printTable } from '../output.js';
import type { Namespace } from '../types.js';

export async function listNamespaces(ctx: Context, opts: { quiet?: boolean }): Promise<void> {
  const { namespaces = [] } = await ctx.api.unary<{ namespaces?: Namespace[] }>('namespaces', 'List', {});
  const sorted = [...namespaces].sort((a, b) => a.name.localeCompare(b.name));
  if (ctx.json) return printJson(sorted.map((n) => ({ name: n.name, labels: n.labels ?? {} })));
  if (opts.quiet) return void process.stdout.write(sorted.map((n) => `${n.name}\n`).join(''));
  printTable(['NAME', 'LABELS'], sorted.map((n) => [n.name, formatLabels(n.labels)]));
}

import type { Context } from '../context.js';
import { printJson } from '../output.js';
import type { Namespace, Plugin } from '../types.js';

interface VersionResponse {
  version?: string;
  revision?: string;
}

/** One screen about the daemon: who it is, what it serves, which namespaces hold state. */
export async function printInfo(ctx: Context): Promise<void> {
  const [version, server, plugins, namespaces] = await Promise.all([
    ctx.api.unary<VersionResponse>('version', 'Version', {}),
    ctx.api.unary<{ uuid?: string }>('introspection', 'Server', {}),
    ctx.api.unary<{ plugins?: Plugin[] }>('introspection', 'Plugins', {}),
    ctx.api.unary<{ namespaces?: Namespace[] }>('namespaces', 'List', {}),
  ]);
  const info = {
    address: ctx.options.address,
    version: version.version ?? '',
    revision: version.revision ?? '',
    uuid: server.uuid ?? '',
    namespaces: (namespaces.namespaces ?? []).map((n) => n.name),
    plugins: (plugins.plugins ?? []).map((p) => ({
      type: p.type ?? '',
      id: p.id ?? '',
      status: p.init_err?.message ? `error: ${p.init_err.message}` : 'ok',
    })),
  };
  if (ctx.json) {
    printJson(info);
    return;
  }
  const lines = [
    `Address:    ${info.address}`,
    `Version:    ${info.version}${info.revision ? ` (${info.revision})` : ''}`,
    `UUID:       ${info.uuid}`,
    `Namespaces: ${info.namespaces.join(', ') || '-'}`,
    'Plugins:',
    ...info.plugins.map((p) => `  ${p.type}.${p.id}${p.status === 'ok' ? '' : ` (${p.status})`}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

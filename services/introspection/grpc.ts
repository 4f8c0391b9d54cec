import { compileFilters } from '../filters/filter.js';
import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import type { Message } from '../server/protos.js';
import { VERSION, REVISION } from '../version.js';

export interface PluginInfo {
  type: string;
  id: string;
  requires?: string[];
  exports?: Record<string, string>;
  capabilities?: string[];
}

const PLATFORM = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch };

/** The plugins berthd has, named as containerd names them so tools discover the same things. */
export const PLUGINS: PluginInfo[] = [
  { type: 'io.containerd.content.v1', id: 'content' },
  { type: 'io.containerd.snapshotter.v1', id: 'overlayfs' },
  { type: 'io.containerd.metadata.v1', id: 'sqlite', requires: ['io.containerd.content.v1', 'io.containerd.snapshotter.v1'] },
  { type: 'io.containerd.differ.v1', id: 'walking', requires: ['io.containerd.metadata.v1'] },
  { type: 'io.containerd.gc.v1', id: 'scheduler', requires: ['io.containerd.metadata.v1'] },
  { type: 'io.containerd.lease.v1', id: 'manager', requires: ['io.containerd.metadata.v1'] },
  { type: 'io.containerd.event.v1', id: 'exchange' },
  ...['containers', 'content', 'diff', 'events', 'images', 'leases', 'namespaces', 'snapshots', 'tasks'].map((id) => ({
    type: 'io.containerd.service.v1',
    id: `${id}-service`,
    requires: ['io.containerd.metadata.v1'],
  })),
  ...['introspection', 'containers', 'content', 'diff', 'events', 'healthcheck', 'images', 'leases', 'namespaces', 'snapshots', 'tasks', 'version'].map(
    (id) => ({ type: 'io.containerd.grpc.v1', id }),
  ),
];

const pluginMessage = (p: PluginInfo): Message => ({
  type: p.type,
  id: p.id,
  requires: p.requires ?? [],
  platforms: p.type === 'io.containerd.snapshotter.v1' || p.type === 'io.containerd.differ.v1' ? [PLATFORM] : [],
  exports: p.exports ?? {},
  capabilities: p.capabilities ?? [],
});

export function introspectionGrpc(serverUuid: string, plugins: PluginInfo[], kit: HandlerKit): ServiceImpl {
  return {
    Plugins: kit.unary('Introspection/Plugins', (req) => {
      const match = compileFilters(req.filters as string[]);
      const selected = plugins.filter((p) => match((path) => (path.length === 1 ? (path[0] === 'type' ? p.type : path[0] === 'id' ? p.id : undefined) : undefined)));
      return { plugins: selected.map(pluginMessage) };
    }),
    Server: kit.unary('Introspection/Server', () => ({ uuid: serverUuid })),
  };
}

export function versionGrpc(kit: HandlerKit): ServiceImpl {
  return { Version: kit.unary('Version/Version', () => ({ version: VERSION, revision: REVISION })) };
}

export function healthGrpc(kit: HandlerKit): ServiceImpl {
  return {
    Check: kit.unary('Health/Check', () => ({ status: 'SERVING' })),
    Watch: kit.serverStream('Health/Watch', async (_req, ctx, send) => {
      await send({ status: 'SERVING' });
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    }),
  };
}

import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import type { AnyValue, Container, ContainerInput, ContainerService } from './service.js';

interface ContainerMessage {
  id?: string;
  labels?: Record<string, string>;
  image?: string;
  runtime?: { name?: string; options?: AnyValue };
  spec?: AnyValue;
  snapshotter?: string;
  snapshot_key?: string;
  extensions?: Record<string, AnyValue>;
}

export const containerMessage = (c: Container): Message => ({
  id: c.id,
  labels: c.labels,
  image: c.image,
  runtime: { name: c.runtime.name, options: c.runtime.options },
  spec: c.spec,
  snapshotter: c.snapshotter,
  snapshot_key: c.snapshotKey,
  created_at: toTimestamp(c.createdAt),
  updated_at: toTimestamp(c.updatedAt),
  extensions: c.extensions,
});

function containerFrom(value: unknown): ContainerInput {
  const m = (value ?? {}) as ContainerMessage;
  return {
    id: m.id ?? '',
    labels: m.labels ?? {},
    image: m.image ?? '',
    runtime: { name: m.runtime?.name ?? '', options: m.runtime?.options },
    spec: m.spec,
    snapshotter: m.snapshotter ?? '',
    snapshotKey: m.snapshot_key ?? '',
    extensions: m.extensions ?? {},
  };
}

export function containersGrpc(containers: ContainerService, kit: HandlerKit): ServiceImpl {
  return {
    Get: kit.unary('Containers/Get', (req, ctx) => ({ container: containerMessage(containers.get(requireNamespace(ctx), String(req.id ?? ''))) })),
    List: kit.unary('Containers/List', (req, ctx) => ({
      containers: containers.list(requireNamespace(ctx), req.filters as string[]).map(containerMessage),
    })),
    ListStream: kit.serverStream('Containers/ListStream', async (req, ctx, send) => {
      for (const c of containers.list(requireNamespace(ctx), req.filters as string[])) await send({ container: containerMessage(c) });
    }),
    Create: kit.unary('Containers/Create', (req, ctx) => ({
      container: containerMessage(containers.create(requireNamespace(ctx), containerFrom(req.container))),
    })),
    Update: kit.unary('Containers/Update', (req, ctx) => {
      const mask = req.update_mask as { paths?: string[] } | undefined;
      return { container: containerMessage(containers.update(requireNamespace(ctx), containerFrom(req.container), mask?.paths)) };
    }),
    Delete: kit.unary('Containers/Delete', async (req, ctx) => {
      await containers.delete(requireNamespace(ctx), String(req.id ?? ''));
      return {};
    }),
  };
}

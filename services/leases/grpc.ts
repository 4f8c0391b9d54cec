import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import type { Lease, LeaseResource, LeaseService } from './service.js';

const leaseMessage = (lease: Lease): Message => ({ id: lease.id, created_at: toTimestamp(lease.createdAt), labels: lease.labels });

function resourceOf(req: Message): LeaseResource {
  const r = (req.resource ?? {}) as Partial<LeaseResource>;
  return { id: r.id ?? '', type: r.type ?? '' };
}

export function leasesGrpc(leases: LeaseService, kit: HandlerKit): ServiceImpl {
  return {
    Create: kit.unary('Leases/Create', (req, ctx) => ({
      lease: leaseMessage(leases.create(requireNamespace(ctx), req.id as string | undefined, req.labels as Record<string, string>)),
    })),
    Delete: kit.unary('Leases/Delete', async (req, ctx) => {
      await leases.delete(requireNamespace(ctx), String(req.id ?? ''), Boolean(req.sync));
      return {};
    }),
    List: kit.unary('Leases/List', (req, ctx) => ({
      leases: leases.list(requireNamespace(ctx), req.filters as string[]).map(leaseMessage),
    })),
    AddResource: kit.unary('Leases/AddResource', (req, ctx) => {
      leases.addResource(requireNamespace(ctx), String(req.id ?? ''), resourceOf(req));
      return {};
    }),
    DeleteResource: kit.unary('Leases/DeleteResource', async (req, ctx) => {
      await leases.deleteResource(requireNamespace(ctx), String(req.id ?? ''), resourceOf(req));
      return {};
    }),
    ListResources: kit.unary('Leases/ListResources', (req, ctx) => ({
      resources: leases.listResources(requireNamespace(ctx), String(req.id ?? '')),
    })),
  };
}

import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import type { NamespaceService } from './service.js';

interface NamespaceMessage {
  name?: string;
  labels?: Record<string, string>;
}

export function namespacesGrpc(namespaces: NamespaceService, kit: HandlerKit): ServiceImpl {
  return {
    Get: kit.unary('Namespaces/Get', (req) => ({ namespace: namespaces.get(String(req.name ?? '')) })),
    List: kit.unary('Namespaces/List', (req) => ({
      namespaces: namespaces.list(req.filter ? [String(req.filter)] : []),
    })),
    Create: kit.unary('Namespaces/Create', (req) => {
      const ns = (req.namespace ?? {}) as NamespaceMessage;
      return { namespace: namespaces.create(ns.name ?? '', ns.labels) };
    }),
    Update: kit.unary('Namespaces/Update', (req) => {
      const ns = (req.namespace ?? {}) as NamespaceMessage;
      const mask = req.update_mask as { paths?: string[] } | undefined;
      return { namespace: namespaces.update(ns.name ?? '', ns.labels ?? {}, mask?.paths) };
    }),
    Delete: kit.unary('Namespaces/Delete', (req) => {
      namespaces.delete(String(req.name ?? ''));
      return {};
    }),
  };
}

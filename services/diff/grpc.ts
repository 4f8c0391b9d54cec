import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import type { DiffService } from './service.js';
import { mountsOf } from '../server/fields.js';

interface DescriptorMessage {
  media_type?: string;
  digest?: string;
  size?: number;
}

export function diffGrpc(diff: DiffService, kit: HandlerKit): ServiceImpl {
  return {
    Apply: kit.unary('Diff/Apply', async (req, ctx) => {
      const d = (req.diff ?? {}) as DescriptorMessage;
      const applied = await diff.apply(
        requireNamespace(ctx),
        { mediaType: d.media_type ?? '', digest: d.digest ?? '', size: d.size ?? 0 },
        mountsOf(req.mounts),
        ctx.signal,
      );
      return { applied: { media_type: applied.mediaType, digest: applied.digest, size: applied.size } };
    }),
    Diff: kit.unary('Diff/Diff', async (req, ctx) => {
      const d = await diff.diff(
        requireNamespace(ctx),
        {
          lower: mountsOf(req.left),
          upper: mountsOf(req.right),
          mediaType: String(req.media_type ?? ''),
          ref: String(req.ref ?? ''),
          labels: (req.labels ?? {}) as Record<string, string>,
        },
        ctx.lease,
      );
      return { diff: { media_type: d.mediaType, digest: d.digest, size: d.size } };
    }),
  };
}

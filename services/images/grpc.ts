import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import type { Image, ImageService } from './service.js';

interface ImageMessage {
  name?: string;
  labels?: Record<string, string>;
  target?: { media_type?: string; digest?: string; size?: number; annotations?: Record<string, string> };
}

export function descriptorMessage(d: Image['target']): Message {
  return { media_type: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations };
}

const imageMessage = (image: Image): Message => ({
  name: image.name,
  labels: image.labels,
  target: descriptorMessage(image.target),
  created_at: toTimestamp(image.createdAt),
  updated_at: toTimestamp(image.updatedAt),
});

function imageFrom(msg: ImageMessage | undefined): Omit<Image, 'createdAt' | 'updatedAt'> {
  const t = msg?.target ?? {};
  return {
    name: msg?.name ?? '',
    labels: msg?.labels ?? {},
    target: { mediaType: t.media_type ?? '', digest: t.digest ?? '', size: t.size ?? 0, annotations: t.annotations ?? {} },
  };
}

export function imagesGrpc(images: ImageService, kit: HandlerKit): ServiceImpl {
  return {
    Get: kit.unary('Images/Get', (req, ctx) => ({ image: imageMessage(images.get(requireNamespace(ctx), String(req.name ?? ''))) })),
    List: kit.unary('Images/List', (req, ctx) => ({
      images: images.list(requireNamespace(ctx), req.filters as string[]).map(imageMessage),
    })),
    Create: kit.unary('Images/Create', (req, ctx) => ({
      image: imageMessage(images.create(requireNamespace(ctx), imageFrom(req.image as ImageMessage))),
    })),
    Update: kit.unary('Images/Update', (req, ctx) => {
      const mask = req.update_mask as { paths?: string[] } | undefined;
      return { image: imageMessage(images.update(requireNamespace(ctx), imageFrom(req.image as ImageMessage), mask?.paths)) };
    }),
    Delete: kit.unary('Images/Delete', async (req, ctx) => {
      await images.delete(requireNamespace(ctx), String(req.name ?? ''), Boolean(req.sync));
      return {};
    }),
  };
}

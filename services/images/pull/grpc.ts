import type { HandlerKit, ServiceImpl } from '../../server/handlers.js';
import { requireNamespace } from '../../server/context.js';
import type { Message } from '../../server/protos.js';
import { normalizePlatform, type Platform } from '../../registry/platform.js';
import { invalidArgument } from '../../errors.js';
import { toTimestamp } from '../../time.js';
import type { PullService } from './service.js';
import type { LayerProgress } from './types.js';

interface PullRequestMessage {
  ref?: string;
  platforms?: Array<{ os?: string; architecture?: string; variant?: string }>;
  all_platforms?: boolean;
  plain_http?: boolean;
  unpack?: boolean;
  snapshotter?: string;
}

function platformsFrom(req: PullRequestMessage): Platform[] {
  return (req.platforms ?? []).map((p) => {
    if (!p.os || !p.architecture) throw invalidArgument('platform needs os and architecture, e.g. {os: "linux", architecture: "arm64"}');
    return normalizePlatform({ os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) });
  });
}

const layerMessage = (p: LayerProgress): Message => ({
  layer: { digest: p.digest, media_type: p.mediaType, offset: p.offset, total: p.total, status: p.status },
});

/** berth.services.pull.v1.Pull: one server-streaming call per pull. */
export function pullGrpc(puller: PullService, kit: HandlerKit): ServiceImpl {
  return {
    Pull: kit.serverStream('Pull/Pull', async (raw, ctx, send) => {
      const req = raw as PullRequestMessage;
      const namespace = requireNamespace(ctx);
      if (!req.ref) throw invalidArgument('ref must not be empty');
      // Progress is sent in order but never awaited by the pull: a slow client must not stall it.
      let sending = Promise.resolve();
      const onProgress = (p: LayerProgress): void => {
        sending = sending.then(() => send(layerMessage(p))).catch(() => undefined);
      };
      const image = await puller.pull(
        namespace,
        req.ref,
        {
          platforms: platformsFrom(req),
          allPlatforms: req.all_platforms === true,
          plainHttp: req.plain_http === true,
          unpack: req.unpack !== false,
          snapshotter: req.snapshotter ?? '',
          signal: ctx.signal,
        },
        onProgress,
      );
      await sending;
      const t = image.target;
      await send({
        image: {
          name: image.name,
          labels: image.labels,
          target: { media_type: t.mediaType, digest: t.digest, size: t.size, annotations: t.annotations },
          created_at: toTimestamp(image.createdAt),
          updated_at: toTimestamp(image.updatedAt),
        },
      });
    }),
  };
}

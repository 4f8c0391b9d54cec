import type { Logger } from '../log.js';
import type { EventExchange } from '../events/exchange.js';
import { fromTimestamp, type Timestamp } from '../time.js';
import { validateNamespace } from '../validate.js';
import { TtrpcServer } from '../ttrpc/server.js';
import type { CallContext } from '../ttrpc/server.js';

export const SHIM_ID_KEY = 'berth-shim-id';
export const EVENT_SEQ_KEY = 'berth-event-seq';

interface ForwardRequest {
  envelope?: { timestamp?: Timestamp; namespace?: string; topic?: string; event?: { type_url?: string; value?: Buffer } };
}

/**
 * Where shims forward task events (containerd.services.events.ttrpc.v1.Events on TTRPC_ADDRESS).
 * A shim retries an event until it is acknowledged, so one may arrive twice; each carries the
 * shim's id and a sequence number, and anything at or below the last seen number is dropped.
 */
export class ShimEventsServer {
  private readonly server = new TtrpcServer();
  private readonly lastSeq = new Map<string, number>();

  constructor(
    private readonly exchange: EventExchange,
    private readonly log: Logger,
  ) {
    this.server.register('containerd.services.events.ttrpc.v1.Events', {
      Forward: (req: ForwardRequest, ctx: CallContext) => this.forward(req, ctx),
    });
  }

  listen(path: string): Promise<void> {
    return this.server.listen(path);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private forward(req: ForwardRequest, ctx: CallContext): object {
    const shimId = ctx.metadata[SHIM_ID_KEY]?.[0];
    const seq = Number(ctx.metadata[EVENT_SEQ_KEY]?.[0]);
    if (shimId && Number.isFinite(seq)) {
      if (seq <= (this.lastSeq.get(shimId) ?? 0)) return {};
      this.lastSeq.set(shimId, seq);
    }
    const env = req.envelope ?? {};
    this.exchange.forward({
      timestamp: fromTimestamp(env.timestamp) ?? Date.now(),
      namespace: validateNamespace(env.namespace ?? ''),
      topic: env.topic ?? '',
      event: { type_url: env.event?.type_url ?? '', value: env.event?.value ?? Buffer.alloc(0) },
    });
    this.log.trace('shim event', { shim: shimId, seq, topic: env.topic });
    return {};
  }
}

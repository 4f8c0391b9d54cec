import type { HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace } from '../server/context.js';
import { invalidArgument } from '../errors.js';
import { fromTimestamp, toTimestamp, type Timestamp } from '../time.js';
import type { Envelope, EventExchange } from './exchange.js';
import { validateNamespace } from '../validate.js';

interface AnyMessage {
  type_url?: string;
  value?: Buffer;
}

function anyFrom(value: unknown): { type_url: string; value: Buffer } {
  const any = (value ?? {}) as AnyMessage;
  if (!any.type_url) throw invalidArgument('event must be a google.protobuf.Any with a type_url');
  return { type_url: any.type_url, value: any.value ?? Buffer.alloc(0) };
}

export function eventsGrpc(exchange: EventExchange, kit: HandlerKit): ServiceImpl {
  return {
    Publish: kit.unary('Events/Publish', (req, ctx) => {
      exchange.publish(requireNamespace(ctx), String(req.topic ?? ''), anyFrom(req.event));
      return {};
    }),
    Forward: kit.unary('Events/Forward', (req) => {
      const env = (req.envelope ?? {}) as { timestamp?: Timestamp; namespace?: string; topic?: string; event?: unknown };
      const envelope: Envelope = {
        timestamp: fromTimestamp(env.timestamp) ?? Date.now(),
        namespace: validateNamespace(env.namespace ?? ''),
        topic: env.topic ?? '',
        event: anyFrom(env.event),
      };
      if (!envelope.topic.startsWith('/')) throw invalidArgument(`event topic "${envelope.topic}": must start with "/"`);
      exchange.forward(envelope);
      return {};
    }),
    Subscribe: kit.serverStream('Events/Subscribe', async (req, ctx, send) => {
      for await (const env of exchange.subscribe(req.filters as string[], ctx.signal)) {
        await send({ timestamp: toTimestamp(env.timestamp), namespace: env.namespace, topic: env.topic, event: env.event });
      }
    }),
  };
}

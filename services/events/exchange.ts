import { invalidArgument } from '../errors.js';
import { compileFilters, type FieldGetter, type Predicate } from '../filters/filter.js';
import type { Logger } from '../log.js';
import type { PendingEvent } from '../metadata/db.js';
import { packAny } from '../server/protos.js';
import { validateNamespace } from '../validate.js';

export interface Envelope {
  timestamp: number;
  namespace: string;
  topic: string;
  event: { type_url: string; value: Buffer };
}

interface Subscriber {
  match: Predicate;
  queue: Envelope[];
  wake: (() => void) | undefined;
  overflowed: boolean;
}

/** A subscriber this far behind is cut off rather than let it hold the daemon's memory. */
const MAX_QUEUE = 10_000;
const TOPIC_RE = /^\/[A-Za-z0-9_\-/.]+$/;

function envelopeFields(env: Envelope): FieldGetter {
  return (path) => {
    if (path.length !== 1) return undefined;
    if (path[0] === 'topic') return env.topic;
    if (path[0] === 'namespace') return env.namespace;
    return undefined;
  };
}

/** In-process publish/subscribe of containerd events (Publish, Forward, Subscribe). */
export class EventExchange {
  private readonly subscribers = new Set<Subscriber>();

  constructor(private readonly log: Logger) {}

  /** The metadata store's post-commit hook and the services' direct publisher. */
  readonly publishPending = (pending: PendingEvent): void => {
    this.publish(pending.namespace, pending.topic, packAny(pending.typeName, pending.event));
  };

  publish(namespace: string, topic: string, event: { type_url: string; value: Buffer }): void {
    validateNamespace(namespace);
    if (!TOPIC_RE.test(topic)) throw invalidArgument(`event topic "${topic}": must start with "/" and use [A-Za-z0-9_-./]`);
    this.forward({ timestamp: Date.now(), namespace, topic, event });
  }

  forward(envelope: Envelope): void {
    this.log.debug('event', { namespace: envelope.namespace, topic: envelope.topic, type: envelope.event.type_url });
    const fields = envelopeFields(envelope);
    for (const sub of this.subscribers) {
      if (sub.overflowed || !sub.match(fields)) continue;
      if (sub.queue.length >= MAX_QUEUE) {
        sub.overflowed = true;
      } else {
        sub.queue.push(envelope);
      }
      sub.wake?.();
    }
  }

  /** Envelopes matching filters, from now until signal aborts. */
  async *subscribe(filters: readonly string[] | undefined, signal: AbortSignal): AsyncGenerator<Envelope> {
    const sub: Subscriber = { match: compileFilters(filters), queue: [], wake: undefined, overflowed: false };
    this.subscribers.add(sub);
    const onAbort = (): void => sub.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        const next = sub.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (sub.overflowed) throw new Error('event subscriber fell too far behind; resubscribe');
        await new Promise<void>((resolve) => (sub.wake = resolve));
        sub.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.subscribers.delete(sub);
    }
  }
}

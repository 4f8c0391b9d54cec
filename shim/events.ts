import { randomUUID } from 'node:crypto';
import { packAny } from '../services/server/protos.js';
import { TtrpcClient } from '../services/ttrpc/client.js';
import { NAMESPACE_KEY } from '../services/ttrpc/envelope.js';
import { Code, TtrpcError } from '../services/ttrpc/status.js';
import { timestamp } from './time.js';

export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';
/** Metadata the daemon deduplicates on: (shim id, seq) is delivered at most once. */
export const SEQ_KEY = 'berth-event-seq';
export const SHIM_ID_KEY = 'berth-shim-id';

const CALL_TIMEOUT_MS = 5_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

interface Pending {
  seq: number;
  namespace: string;
  topic: string;
  event: { type_url: string; value: Buffer };
  timestamp: { seconds: number; nanos: number };
}

const TRANSIENT = new Set<number>([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED]);

/**
 * Forwards task events to the daemon's ttrpc Events service, in order, each exactly once: every
 * event gets the next sequence number of this shim instance and is retried with the same number
 * until the daemon answers, so the daemon can drop a duplicate whose first answer was lost. While
 * the daemon is unreachable the queue grows in memory and is replayed when it is back.
 */
export class EventPublisher {
  /** Unique per shim process, so a restarted shim's sequence never collides with its predecessor's. */
  readonly shimId = randomUUID();
  private readonly queue: Pending[] = [];
  private nextSeq = 1;
  private client: TtrpcClient | undefined;
  private pumping = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly address: string,
    private readonly log: (message: string) => void,
  ) {}

  publish(namespace: string, topic: string, typeName: string, event: object): void {
    // Without TTRPC_ADDRESS nobody can ever receive them; queueing would only grow memory.
    if (!this.address) return;
    this.queue.push({
      seq: this.nextSeq++,
      namespace,
      topic,
      event: packAny(typeName, event),
      timestamp: timestamp(new Date()),
    });
    void this.pump();
  }

  /** Resolves when everything queued so far was delivered, or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  get pendingCount(): number {
    return this.queue.length;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let delay = RETRY_MIN_MS;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      try {
        await this.forward(next);
        this.queue.shift();
        delay = RETRY_MIN_MS;
      } catch (err) {
        const code = err instanceof TtrpcError ? err.grpcCode : Code.UNKNOWN;
        if (!TRANSIENT.has(code)) {
          // The daemon received and refused it: retrying the same bytes cannot succeed.
          this.log(`event ${next.topic} seq ${next.seq} refused: ${(err as Error).message}`);
          this.queue.shift();
          continue;
        }
        this.client?.close();
        this.client = undefined;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    this.pumping = false;
    for (const done of this.idle.splice(0)) done();
  }

  private async forward(event: Pending): Promise<void> {
    if (!this.client || this.client.isClosed) this.client = await TtrpcClient.connect(this.address, CALL_TIMEOUT_MS);
    await this.client.call(
      EVENTS_SERVICE,
      'Forward',
      'containerd.services.events.ttrpc.v1.ForwardRequest',
      'google.protobuf.Empty',
      {
        envelope: {
          timestamp: event.timestamp,
          namespace: event.namespace,
          topic: event.topic,
          event: event.event,
        },
      },
      {
        timeoutMs: CALL_TIMEOUT_MS,
        metadata: { [SEQ_KEY]: String(event.seq), [SHIM_ID_KEY]: this.shimId, [NAMESPACE_KEY]: event.namespace },
      },
    );
  }
}

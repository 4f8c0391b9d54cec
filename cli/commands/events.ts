import { decodeMessage, messageType } from '../../services/server/protos.js';
import type { Context } from '../context.js';
import { isoTime } from '../output.js';
import type { AnyMessage, Envelope } from '../types.js';

/** Event payloads use containerd's bare type names (containerd.events.TaskExit); decode the known ones. */
function decodeEvent(event: AnyMessage | undefined): unknown {
  if (!event?.type_url) return {};
  try {
    return decodeMessage(messageType(event.type_url.replace(/^.*\//, '')), event.value ?? Buffer.alloc(0));
  } catch {
    return { type_url: event.type_url, value: (event.value ?? Buffer.alloc(0)).toString('base64') };
  }
}

/** Streams events until interrupted: one line each, or one JSON object per line with --json. */
export async function printEvents(ctx: Context, opts: { filter: string[] }): Promise<void> {
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const events = ctx.api.stream<Envelope>('events', 'Subscribe', { filters: opts.filter });
  const printing = (async () => {
    for await (const envelope of events) {
      const record = {
        timestamp: isoTime(envelope.timestamp),
        namespace: envelope.namespace ?? '',
        topic: envelope.topic ?? '',
        event: decodeEvent(envelope.event),
      };
      process.stdout.write(
        ctx.json ? `${JSON.stringify(record)}\n` : `${record.timestamp} ${record.namespace} ${record.topic} ${JSON.stringify(record.event)}\n`,
      );
    }
  })();
  // On a signal, returning is enough: closing the client cancels the subscription.
  await Promise.race([printing, stop]);
}

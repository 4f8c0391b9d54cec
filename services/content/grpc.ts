import { invalidArgument } from '../errors.js';
import type { BidiCall, HandlerKit, ServiceImpl } from '../server/handlers.js';
import { requireNamespace, type CallContext } from '../server/context.js';
import type { Message } from '../server/protos.js';
import { toTimestamp } from '../time.js';
import type { ContentInfo, ContentService, ContentWriter } from './service.js';
import type { IngestStatus } from './store.js';

interface InfoMessage {
  digest?: string;
  labels?: Record<string, string>;
}

interface WriteRequest {
  action?: 'STAT' | 'WRITE' | 'COMMIT';
  ref?: string;
  total?: number;
  expected?: string;
  offset?: number;
  data?: Buffer;
  labels?: Record<string, string>;
}

const LIST_BATCH = 100;

export function infoMessage(info: ContentInfo): Message {
  return {
    digest: info.digest,
    size: info.size,
    created_at: toTimestamp(info.createdAt),
    updated_at: toTimestamp(info.updatedAt),
    labels: info.labels,
  };
}

function statusMessage(s: IngestStatus): Message {
  return {
    started_at: toTimestamp(s.startedAt),
    updated_at: toTimestamp(s.updatedAt),
    ref: s.ref,
    offset: s.offset,
    total: s.total,
    expected: s.expected,
  };
}

export function contentGrpc(content: ContentService, kit: HandlerKit): ServiceImpl {
  return {
    Info: kit.unary('Content/Info', (req, ctx) => ({
      info: infoMessage(content.info(requireNamespace(ctx), String(req.digest ?? ''))),
    })),
    Update: kit.unary('Content/Update', (req, ctx) => {
      const info = (req.info ?? {}) as InfoMessage;
      const mask = req.update_mask as { paths?: string[] } | undefined;
      const updated = content.update(requireNamespace(ctx), info.digest ?? '', info.labels ?? {}, mask?.paths);
      return { info: infoMessage(updated) };
    }),
    List: kit.serverStream('Content/List', async (req, ctx, send) => {
      const infos = content.list(requireNamespace(ctx), req.filters as string[]);
      for (let i = 0; i < infos.length; i += LIST_BATCH) {
        await send({ info: infos.slice(i, i + LIST_BATCH).map(infoMessage) });
      }
    }),
    Delete: kit.unary('Content/Delete', async (req, ctx) => {
      await content.delete(requireNamespace(ctx), String(req.digest ?? ''));
      return {};
    }),
    Read: kit.serverStream('Content/Read', async (req, ctx, send) => {
      let offset = Number(req.offset ?? 0);
      for await (const chunk of content.read(requireNamespace(ctx), String(req.digest ?? ''), offset, Number(req.size ?? 0))) {
        await send({ offset, data: chunk });
        offset += (chunk as Buffer).length;
      }
    }),
    Status: kit.unary('Content/Status', async (req, ctx) => ({
      status: statusMessage(await content.status(requireNamespace(ctx), String(req.ref ?? ''))),
    })),
    ListStatuses: kit.unary('Content/ListStatuses', async (req, ctx) => ({
      statuses: (await content.listStatuses(requireNamespace(ctx), req.filters as string[])).map(statusMessage),
    })),
    Abort: kit.unary('Content/Abort', async (req, ctx) => {
      await content.abort(requireNamespace(ctx), String(req.ref ?? ''));
      return {};
    }),
    Write: kit.bidi('Content/Write', (call, ctx) => serveWrite(content, call, ctx)),
  };
}

/**
 * The Write protocol: the first message names the ref (and maybe total/expected); each message
 * is answered with the ingest's status; WRITE appends at `offset`; COMMIT verifies and stores.
 */
async function serveWrite(content: ContentService, call: BidiCall, ctx: CallContext): Promise<void> {
  const namespace = requireNamespace(ctx);
  let writer: ContentWriter | undefined;
  try {
    // Leaving the loop early (an error) leaves the call open for the error's status.
    for await (const raw of call) {
      const req = raw as WriteRequest;
      if (!writer) {
        if (!req.ref) throw invalidArgument('first message of a Content.Write stream must set ref');
        writer = await content.writer(namespace, req.ref, req.total ?? 0, req.expected ?? '', ctx.lease);
      }
      await call.send(await handleWriteMessage(writer, req));
    }
  } finally {
    await writer?.release();
  }
}

async function handleWriteMessage(writer: ContentWriter, req: WriteRequest): Promise<Message> {
  const ingest = writer.ingest;
  const action = req.action ?? 'STAT';
  if (action !== 'STAT') {
    if (req.total) ingest.total = req.total;
    if (req.data && req.data.length > 0) await ingest.write(req.offset ?? 0, req.data);
  }
  let digest = ingest.digest();
  if (action === 'COMMIT') digest = await writer.commit(req.total ?? 0, req.expected ?? '', req.labels ?? {});
  return {
    action,
    started_at: toTimestamp(ingest.startedAt),
    updated_at: toTimestamp(ingest.updatedAt),
    offset: ingest.offset,
    total: ingest.total,
    digest,
  };
}

/** A GrpcServer with test methods, for the h2 server's tests (raw frames and grpc-js). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notFound } from '../../../services/errors.js';
import { silentLogger } from '../../../services/log.js';
import type { GrpcMethod } from '../../../services/server/h2/call.js';
import { GrpcServer } from '../../../services/server/h2/server.js';
import { h2Start, handlerKit, type MethodHandler } from '../../../services/server/handlers.js';
import type { Message } from '../../../services/server/protos.js';

export interface Codec {
  decode: (b: Buffer) => Message;
  encode: (m: Message) => Buffer;
}

export const json: Codec = {
  decode: (b) => (b.length === 0 ? {} : (JSON.parse(b.toString('utf8')) as Message)),
  encode: (m) => Buffer.from(JSON.stringify(m)),
};

/** Request and response bodies as bytes: { bytes: Buffer }. */
export const raw: Codec = {
  decode: (b) => ({ bytes: Buffer.from(b) }),
  encode: (m) => m.bytes as Buffer,
};

export interface State {
  /** What happened to the handlers' signals and sends. */
  events: string[];
  /** Sends of Big that have resolved. */
  sent: number;
  /** While set, Sink waits on it before each message (a slow reader). */
  sinkGate: Promise<void> | undefined;
  /** Bytes Sink has read. */
  sinkBytes: number;
}

export interface Fixture {
  server: GrpcServer;
  path: string;
  state: State;
  stop(): Promise<void>;
}

export const SVC = '/test.Svc';

export async function startFixture(): Promise<Fixture> {
  const state: State = { events: [], sent: 0, sinkGate: undefined, sinkBytes: 0 };
  const kit = handlerKit(silentLogger);
  const methods = new Map<string, GrpcMethod>();
  const add = (name: string, handler: MethodHandler, request: Codec, response: Codec): void => {
    methods.set(`${SVC}/${name}`, { requestStream: handler.kind === 'bidi', decode: request.decode, encode: response.encode, start: h2Start(handler) });
  };
  const watch = (signal: AbortSignal, what: string): Promise<void> =>
    new Promise((resolve) =>
      signal.addEventListener('abort', () => {
        state.events.push(`${what} aborted: ${(signal.reason as Error).message}`);
        resolve();
      }),
    );

  add('Echo', kit.unary('Svc/Echo', (req, ctx) => ({ ...req, namespace: ctx.namespace ?? null, lease: ctx.lease ?? null })), json, json);
  add(
    'Fail',
    kit.unary('Svc/Fail', () => {
      throw notFound('thing 50% ✓');
    }),
    json,
    json,
  );
  add(
    'Wait',
    kit.unary('Svc/Wait', async (_req, ctx) => {
      await watch(ctx.signal, 'Wait');
      return {};
    }),
    json,
    json,
  );
  add(
    'Slow',
    kit.unary('Svc/Slow', async (req) => {
      await new Promise((resolve) => setTimeout(resolve, Number(req.ms ?? 100)));
      return { slept: req.ms ?? 100 };
    }),
    json,
    json,
  );
  add(
    'Big',
    kit.serverStream('Svc/Big', async (req, _ctx, send) => {
      for (let i = 0; i < Number(req.count); i++) {
        await send({ bytes: Buffer.alloc(Number(req.size), 0x61 + i) });
        state.sent++;
      }
    }),
    json,
    raw,
  );
  add(
    'Huge',
    kit.unary('Svc/Huge', () => ({ bytes: Buffer.alloc((16 << 20) + 1) })),
    json,
    raw,
  );
  add(
    'Sink',
    kit.bidi('Svc/Sink', async (call) => {
      for await (const msg of call) {
        if (state.sinkGate) await state.sinkGate;
        state.sinkBytes += (msg.bytes as Buffer).length;
        await call.send({ total: state.sinkBytes });
      }
    }),
    raw,
    json,
  );

  const dir = mkdtempSync(join(tmpdir(), 'berth-h2-'));
  const path = join(dir, 'sock');
  const server = new GrpcServer(methods, silentLogger);
  await server.listen(path);
  return {
    server,
    path,
    state,
    stop: async () => {
      await server.shutdown(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

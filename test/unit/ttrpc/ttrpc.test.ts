import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { notFound } from '../../../services/errors.js';
import { encodeMessage, messageType } from '../../../services/server/protos.js';
import {
  Code,
  encodeFrame,
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
  TtrpcClient,
  TtrpcError,
  TtrpcServer,
  type CallContext,
} from '../../../services/ttrpc/index.js';
import { decodeResponse, encodeRequest } from '../../../services/ttrpc/envelope.js';

const TASK = 'containerd.task.v2.Task';

interface StateRequest {
  id?: string;
  exec_id?: string;
}

let dir: string;
let socketPath: string;
let server: TtrpcServer;
let clients: TtrpcClient[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-ttrpc-'));
  socketPath = join(dir, 'sock');
  server = new TtrpcServer();
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(): Promise<TtrpcClient> {
  const client = await TtrpcClient.connect(socketPath);
  clients.push(client);
  return client;
}

function state(client: TtrpcClient, id: string, opts = {}): Promise<{ id?: string; pid?: number; bundle?: string }> {
  return client.call(TASK, 'State', 'containerd.task.v2.StateRequest', 'containerd.task.v2.StateResponse', { id }, opts);
}

function rejection(p: Promise<unknown>): Promise<TtrpcError> {
  return p.then(
    () => {
      throw new Error('call unexpectedly succeeded');
    },
    (e: unknown) => e as TtrpcError,
  );
}

/** Writes raw bytes and collects `expected` response frames. */
function rawExchange(bytes: Buffer[], expected = bytes.length): Promise<{ streamId: number; code: number; message: string }[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const decoder = new FrameDecoder();
    const got: { streamId: number; code: number; message: string }[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const res = decodeResponse(f.payload);
        got.push({ streamId: f.streamId, code: res.status?.code ?? 0, message: res.status?.message ?? '' });
      }
      if (got.length === expected) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
    });
  });
}

function stateRequestFrame(streamId: number, id: string, timeoutNano = 0): Buffer {
  const payload = encodeMessage(messageType('containerd.task.v2.StateRequest'), { id });
  const envelope = encodeRequest({ service: TASK, method: 'State', payload, timeoutNano, metadata: {} });
  return encodeFrame(streamId, FrameType.Request, envelope);
}

describe('FrameDecoder', () => {
  it('reassembles frames split at every possible byte boundary', () => {
    const payloads = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(70_000, 7)];
    const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(2 * i + 1, FrameType.Request, p, i)));
    for (const step of [1, 3, HEADER_SIZE, 4096, wire.length]) {
      const decoder = new FrameDecoder();
      const frames = [];
      for (let off = 0; off < wire.length; off += step) frames.push(...decoder.push(wire.subarray(off, off + step)));
      expect(frames.map((f) => [f.streamId, f.type, f.flags, f.payload.length])).toEqual([
        [1, 1, 0, 5],
        [3, 1, 1, 0],
        [5, 1, 2, 70_000],
      ]);
      expect(frames[0]!.payload.toString()).toBe('first');
      expect(frames[2]!.payload.equals(payloads[2]!)).toBe(true);
    }
  });

  it('skips an oversized frame and keeps decoding what follows', () => {
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32BE(MAX_PAYLOAD + 1, 0);
    header.writeUInt32BE(9, 4);
    header.writeUInt8(FrameType.Request, 8);
    const decoder = new FrameDecoder();
    const first = decoder.push(header);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ streamId: 9, oversized: MAX_PAYLOAD + 1 });
    expect(decoder.push(Buffer.alloc(MAX_PAYLOAD))).toEqual([]);
    const after = decoder.push(Buffer.concat([Buffer.alloc(1), encodeFrame(11, FrameType.Response, Buffer.from('ok'))]));
    expect(after.map((f) => [f.streamId, f.payload.toString()])).toEqual([[11, 'ok']]);
  });

  it('refuses to encode a payload above the limit', () => {
    expect(() => encodeFrame(1, FrameType.Request, Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(RangeError);
  });
});

describe('TtrpcServer and TtrpcClient', () => {
  it('round-trips a call with metadata and the ttrpc namespace', async () => {
    let seen: CallContext | undefined;
    server.register(TASK, {
      State: (req: StateRequest, ctx: CallContext) => {
        seen = ctx;
        return { id: req.id, pid: 42, bundle: '/b' };
      },
    });
    await server.listen(socketPath);
    const client = await connect();
    const res = await state(client, 't1', {
      metadata: { 'containerd-namespace-ttrpc': 'ns1', multi: ['a', 'b'] },
    });
    expect(res).toEqual({ id: 't1', pid: 42, bundle: '/b' });
    expect(seen?.namespace).toBe('ns1');
    expect(seen?.metadata.multi).toEqual(['a', 'b']);
    expect(seen?.deadline).toBeUndefined();
  });

  it('multiplexes concurrent calls and answers them out of order', async () => {
    let releaseFirst!: () => void;
    const firstBlocked = new Promise<void>((r) => (releaseFirst = r));
    server.register(TASK, {
      State: async (req: StateRequest) => {
        if (req.id === 'slow') await firstBlocked;
        return { id: req.id, pid: req.id === 'slow' ? 1 : 2 };
      },
    });
    await server.listen(socketPath);
    const client = await connect();
    const slow = state(client, 'slow');
    const fast = await state(client, 'fast');
    expect(fast).toEqual({ id: 'fast', pid: 2 });
    releaseFirst();
    expect(await slow).toEqual({ id: 'slow', pid: 1 });
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => state(client, `t${i}`)));
    expect(many.map((r) => r.id)).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
  });

  it('enforces a deadline on both sides and aborts the handler', async () => {
    let aborted: Promise<unknown> | undefined;
    server.register(TASK, {
      State: (_req: StateRequest, ctx: CallContext) => {
        aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason)));
        return new Promise<never>(() => undefined);
      },
    });
    await server.listen(socketPath);
    const client = await connect();
    const err = await rejection(state(client, 'x', { timeoutMs: 50 }));
    expect(err.grpcCode).toBe(Code.DEADLINE_EXCEEDED);
    expect(await aborted).toBeInstanceOf(TtrpcError);
    // The server answers by itself when only timeout_nano says so (no client-side timer).
    const [res] = await rawExchange([stateRequestFrame(1, 'y', 30e6)]);
    expect(res).toMatchObject({ streamId: 1, code: Code.DEADLINE_EXCEEDED });
    // The connection stays usable after a deadline.
    expect(client.isClosed).toBe(false);
  });

  it('returns handler errors as google.rpc.Status with their gRPC code', async () => {
    server.register(TASK, {
      State: (req: StateRequest) => {
        if (req.id === 'berth') throw notFound('task berth');
        if (req.id === 'ttrpc') throw new TtrpcError(Code.FAILED_PRECONDITION, 'not stopped');
        throw new Error('boom');
      },
    });
    await server.listen(socketPath);
    const client = await connect();
    expect(await rejection(state(client, 'berth'))).toMatchObject({ grpcCode: Code.NOT_FOUND, message: 'task berth: not found' });
    expect(await rejection(state(client, 'ttrpc'))).toMatchObject({ grpcCode: Code.FAILED_PRECONDITION, message: 'not stopped' });
    expect(await rejection(state(client, 'other'))).toMatchObject({ grpcCode: Code.UNKNOWN, message: 'boom' });
    const unknownMethod = client.call(TASK, 'Pids', 'containerd.task.v2.PidsRequest', 'containerd.task.v2.PidsResponse', {});
    expect(await rejection(unknownMethod)).toMatchObject({ grpcCode: Code.UNIMPLEMENTED });
    const unknownService = client.call('x.Y', 'Z', 'google.protobuf.Empty', 'google.protobuf.Empty', {});
    expect((await rejection(unknownService)).message).toContain('service x.Y');
  });

  it('refuses messages above 4 MiB on both sides without losing the connection', async () => {
    server.register(TASK, { State: (req: StateRequest) => ({ id: req.id }) });
    await server.listen(socketPath);
    const client = await connect();
    const tooBig = state(client, 'x'.repeat(MAX_PAYLOAD));
    expect(await rejection(tooBig)).toMatchObject({ grpcCode: Code.RESOURCE_EXHAUSTED });
    expect(await state(client, 'after')).toEqual({ id: 'after' });

    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32BE(MAX_PAYLOAD + 10, 0);
    header.writeUInt32BE(1, 4);
    header.writeUInt8(FrameType.Request, 8);
    const answers = await rawExchange([header, Buffer.alloc(MAX_PAYLOAD + 10), stateRequestFrame(3, 'next')], 2);
    expect(answers.map((a) => [a.streamId, a.code])).toEqual([
      [1, Code.RESOURCE_EXHAUSTED],
      [3, Code.OK],
    ]);
  });

  it('fails pending and later calls with UNAVAILABLE when the connection closes', async () => {
    server.register(TASK, { State: () => new Promise<never>(() => undefined) });
    await server.listen(socketPath);
    const client = await connect();
    const pending = rejection(state(client, 'a'));
    const pending2 = rejection(state(client, 'b'));
    await server.close();
    expect((await pending).grpcCode).toBe(Code.UNAVAILABLE);
    expect((await pending2).grpcCode).toBe(Code.UNAVAILABLE);
    expect((await client.closed).grpcCode).toBe(Code.UNAVAILABLE);
    expect((await rejection(state(client, 'c'))).grpcCode).toBe(Code.UNAVAILABLE);
  });

  it('reports a refused connection as UNAVAILABLE', async () => {
    const err = await rejection(TtrpcClient.connect(join(dir, 'nothing')));
    expect(err.grpcCode).toBe(Code.UNAVAILABLE);
  });
});

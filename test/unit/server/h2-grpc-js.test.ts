import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  status,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '../../../services/server/protos.js';
import { json, raw, startFixture, SVC, type Codec, type Fixture } from './h2-fixture.js';

// grpc-js as the client of the h2 server: node:http2 (nghttp2) on the other end, with its
// Huffman-coded, dynamically indexed headers and its own flow control.

function method(name: string, request: Codec, response: Codec, requestStream: boolean, responseStream: boolean): MethodDefinition<Message, Message> {
  return {
    path: `${SVC}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: request.encode,
    requestDeserialize: request.decode,
    responseSerialize: response.encode,
    responseDeserialize: response.decode,
  };
}

const definition = {
  Echo: method('Echo', json, json, false, false),
  Fail: method('Fail', json, json, false, false),
  Wait: method('Wait', json, json, false, false),
  Big: method('Big', json, raw, false, true),
  Sink: method('Sink', raw, json, true, true),
  Missing: { ...method('Echo', json, json, false, false), path: '/test.Svc/Missing' },
};

type Unary = (req: Message, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, res?: Message) => void) => void;

let fx: Fixture;
let client: Client & Record<string, unknown>;

beforeEach(async () => {
  fx = await startFixture();
  const Ctor = makeGenericClientConstructor(definition, 'Svc');
  client = new Ctor(`unix:${fx.path}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 32 << 20,
    'grpc.max_send_message_length': 32 << 20,
  }) as Client & Record<string, unknown>;
});

afterEach(async () => {
  client.close();
  await fx.stop();
});

function unary(name: string, req: Message, md = new Metadata(), deadline?: number): Promise<Message> {
  const fn = (client[name] as Unary).bind(client);
  return new Promise((resolve, reject) => fn(req, md, deadline ? { deadline } : {}, (err, res) => (err ? reject(err) : resolve(res ?? {}))));
}

describe('h2 server with a grpc-js client', () => {
  it('serves unary calls with metadata, many at once on one connection', async () => {
    const md = new Metadata();
    md.set('containerd-namespace', 'default');
    md.set('containerd-lease', 'lease-1');
    md.set('x-trace-bin', Buffer.from([1, 2, 3]));
    expect(await unary('Echo', { a: 'ü' }, md)).toEqual({ a: 'ü', namespace: 'default', lease: 'lease-1' });
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => unary('Echo', { i }, md)));
    expect(results.map((r) => r.i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('carries status codes and messages', async () => {
    await expect(unary('Fail', {})).rejects.toMatchObject({ code: status.NOT_FOUND, details: 'thing 50% ✓: not found' });
    await expect(unary('Missing', {})).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
  });

  it('applies the deadline and cancels the handler', async () => {
    await expect(unary('Wait', {}, new Metadata(), Date.now() + 100)).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    await expect.poll(() => fx.state.events).toEqual(['Wait aborted: Deadline exceeded']);
  });

  it('cancels the handler when the client cancels', async () => {
    const call = (client.Wait as (req: Message, cb: (err: ServiceError | null) => void) => { cancel(): void }).call(client, {}, () => undefined);
    await sleep(50);
    call.cancel();
    await expect.poll(() => fx.state.events).toEqual(['Wait aborted: the client cancelled the call']);
  });

  it('streams 24 MiB to a slow reader with back-pressure', async () => {
    const call = (client.Big as (req: Message) => ClientReadableStream<Message>).call(client, { count: 24, size: 1 << 20 });
    let total = 0;
    let maxAhead = 0;
    for await (const msg of call as AsyncIterable<Message>) {
      total += (msg.bytes as Buffer).length;
      maxAhead = Math.max(maxAhead, fx.state.sent - total / (1 << 20));
      await sleep(5);
    }
    expect(total).toBe(24 << 20);
    // The server did not run far ahead of what the client read (windows and back-pressure).
    expect(maxAhead).toBeLessThan(20);
  });

  it('takes a 16 MiB request stream (as Content.Write does) and answers each message', async () => {
    const call = (client.Sink as () => ClientDuplexStream<Message, Message>).call(client);
    const replies: number[] = [];
    call.on('data', (m: Message) => replies.push(Number(m.total)));
    const done = new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (let i = 0; i < 16; i++) {
      if (!call.write({ bytes: Buffer.alloc(1 << 20, i) })) await new Promise((resolve) => call.once('drain', resolve));
    }
    call.end();
    await done;
    expect(replies).toHaveLength(16);
    expect(replies.at(-1)).toBe(16 << 20);
  });
});

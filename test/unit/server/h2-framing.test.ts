import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { frame, Setting, settingsFrame } from '../../../services/server/h2/frames.js';
import { encodeHeaders } from '../../../services/server/h2/hpack.js';
import { huffmanEncode } from '../../../services/server/h2/huffman.js';
import { startFixture, SVC, type Fixture } from './h2-fixture.js';
import { ErrorCode, Flag, FrameType, grpcMessage, grpcMessages, RawClient, requestHeaders, type Frame } from './h2-client.js';

let fx: Fixture;
let clients: RawClient[];

beforeEach(async () => {
  fx = await startFixture();
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  await fx.stop();
});

async function connect(opts: Parameters<typeof RawClient.connect>[1] = {}): Promise<RawClient> {
  const c = await RawClient.connect(fx.path, opts);
  clients.push(c);
  return c;
}

const json = (b: Buffer): unknown => JSON.parse(b.toString('utf8'));

describe('h2 server: connection setup', () => {
  it('announces its settings and window, and acks the client settings and pings', async () => {
    const c = await connect();
    const settings = await c.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0);
    const values = new Map<number, number>();
    for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    expect(values.get(Setting.INITIAL_WINDOW_SIZE)).toBe(4 << 20);
    expect(values.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(1000);
    const wu = await c.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    expect(wu.payload.readUInt32BE(0)).toBe((16 << 20) - 65535);
    await c.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);

    c.send(frame(FrameType.PING, 0, 0, Buffer.from('pingpong')));
    const pong = await c.waitFor((f) => f.type === FrameType.PING);
    expect(pong.flags & Flag.ACK).toBe(Flag.ACK);
    expect(pong.payload.toString()).toBe('pingpong');
  });

  it('sends a held PING ack after the next response, or on its own shortly', async () => {
    const c = await connect();
    await c.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    c.send(frame(FrameType.PING, 0, 0, Buffer.from('bdp-ping')));
    c.unary(1, `${SVC}/Echo`, '{}');
    const ack = await c.waitFor((f) => f.type === FrameType.PING);
    const trailers = await c.finished(1);
    expect(trailers.status).toBe('0');
    const order = c.frames.filter((f) => f.streamId === 1 || f.type === FrameType.PING).map((f) => f.type);
    expect(order).toEqual([FrameType.HEADERS, FrameType.DATA, FrameType.HEADERS, FrameType.PING]);
    expect(ack.payload.toString()).toBe('bdp-ping');
    // Nothing else to send: the ack goes alone after a short delay.
    const started = Date.now();
    c.send(frame(FrameType.PING, 0, 0, Buffer.from('idle-png')));
    await c.waitFor((f) => f.type === FrameType.PING && f.payload.toString() === 'idle-png');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('ends a connection with a bad preface with GOAWAY(PROTOCOL_ERROR)', async () => {
    const c = await connect({ preface: false });
    c.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect((await c.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
    await c.closed;
  });

  it('requires SETTINGS as the first frame', async () => {
    const c = await connect({ preface: false });
    c.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    expect((await c.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('takes the preface and frames split into single bytes', async () => {
    const c = await connect({ preface: false });
    const bytes = Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      settingsFrame([]),
      frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaders(requestHeaders(`${SVC}/Echo`))),
      frame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage('{"a":1}')),
    ]);
    for (const byte of bytes) {
      c.send(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const res = await c.finished(1);
    expect(res.status).toBe('0');
    expect(json(grpcMessages(res.data)[0] as Buffer)).toEqual({ a: 1, namespace: null, lease: null });
  });
});

describe('h2 server: HEADERS, CONTINUATION and DATA', () => {
  it('answers a request split over HEADERS and CONTINUATION frames, with padding and priority', async () => {
    const c = await connect();
    const block = encodeHeaders(requestHeaders(`${SVC}/Echo`, [['containerd-namespace', 'ns1']]));
    const third = Math.floor(block.length / 3);
    // HEADERS: PADDED | PRIORITY, pad length 7, 5 priority bytes, first third of the block, padding.
    const headers = Buffer.concat([Buffer.from([7]), Buffer.from([0, 0, 0, 0, 16]), block.subarray(0, third), Buffer.alloc(7)]);
    c.send(
      frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, headers),
      frame(FrameType.CONTINUATION, 0, 1, block.subarray(third, 2 * third)),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(2 * third)),
      frame(FrameType.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 1])),
    );
    // The message split over two DATA frames, the first padded.
    const msg = grpcMessage(JSON.stringify({ hello: 'world' }));
    c.send(
      frame(FrameType.DATA, Flag.PADDED, 1, Buffer.concat([Buffer.from([3]), msg.subarray(0, 3), Buffer.alloc(3)])),
      frame(FrameType.DATA, Flag.END_STREAM, 1, msg.subarray(3)),
    );
    const res = await c.finished(1);
    expect(res.headers[0]).toEqual([
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ]);
    expect(res.status).toBe('0');
    expect(json(grpcMessages(res.data)[0] as Buffer)).toEqual({ hello: 'world', namespace: 'ns1', lease: null });
    expect(res.rst).toBeUndefined();
  });

  it('decodes Huffman-coded headers and follows the dynamic table across requests', async () => {
    const c = await connect();
    const path = huffmanEncode(`${SVC}/Echo`);
    const ns = huffmanEncode('huff');
    // :path with incremental indexing (name index 4), Huffman value; a custom header likewise.
    const first = Buffer.concat([
      encodeHeaders(requestHeaders('').filter(([n]) => n !== ':path')),
      Buffer.from([0x44, 0x80 | path.length]),
      path,
      Buffer.from([0x40, 20]),
      Buffer.from('containerd-namespace'),
      Buffer.from([0x80 | ns.length]),
      ns,
    ]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, first), frame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage('{}')));
    expect(json(grpcMessages((await c.finished(1)).data)[0] as Buffer)).toEqual({ namespace: 'huff', lease: null });
    // The same two fields by dynamic index: 62 (namespace, newest) and 63 (:path).
    const second = Buffer.concat([encodeHeaders(requestHeaders('').filter(([n]) => n !== ':path')), Buffer.from([0xbf, 0xbe])]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 3, second), frame(FrameType.DATA, Flag.END_STREAM, 3, grpcMessage('{"n":2}')));
    expect(json(grpcMessages((await c.finished(3)).data)[0] as Buffer)).toEqual({ n: 2, namespace: 'huff', lease: null });
  });

  it('treats a frame inside a header block as a PROTOCOL_ERROR', async () => {
    const c = await connect();
    const block = encodeHeaders(requestHeaders(`${SVC}/Echo`));
    c.send(frame(FrameType.HEADERS, 0, 1, block.subarray(0, 4)), frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    expect((await c.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('treats CONTINUATION without HEADERS as a PROTOCOL_ERROR', async () => {
    const c = await connect();
    c.send(frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.from([0x82])));
    expect((await c.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('treats padding as long as the payload as a PROTOCOL_ERROR', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`));
    c.send(frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([4, 1, 2, 3])));
    expect((await c.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('treats a frame beyond SETTINGS_MAX_FRAME_SIZE as a FRAME_SIZE_ERROR', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`));
    c.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16385)));
    expect((await c.goaway())[1]).toBe(ErrorCode.FRAME_SIZE_ERROR);
    await c.closed;
  });

  it('treats a broken header block as a COMPRESSION_ERROR', async () => {
    const c = await connect();
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])));
    expect((await c.goaway())[1]).toBe(ErrorCode.COMPRESSION_ERROR);
  });

  it('refuses even stream ids and DATA on idle streams', async () => {
    const c1 = await connect();
    c1.headers(2, requestHeaders(`${SVC}/Echo`));
    expect((await c1.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
    const c2 = await connect();
    c2.data(5, grpcMessage('{}'));
    expect((await c2.goaway())[1]).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('resets a stream that sends DATA after END_STREAM', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Wait`));
    c.data(1, grpcMessage('{}'), true);
    c.data(1, grpcMessage('{}'));
    const res = await c.finished(1);
    expect(res.rst).toBe(ErrorCode.STREAM_CLOSED);
    await expect.poll(() => fx.state.events).toEqual(['Wait aborted: the stream was reset (HTTP/2 error 5)']);
  });
});

describe('h2 server: gRPC semantics', () => {
  it('answers an unknown method with a Trailers-Only UNIMPLEMENTED', async () => {
    const c = await connect();
    c.unary(1, '/nope.Svc/Nothing', '{}');
    const res = await c.finished(1);
    expect(res.headers).toHaveLength(1);
    expect(res.headers[0]).toContainEqual([':status', '200']);
    expect(res.status).toBe('12');
    expect(res.message).toBe('The server does not implement the method /nope.Svc/Nothing');
  });

  it('sends handler errors as Trailers-Only with a percent-encoded message', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Fail`, '{}');
    const res = await c.finished(1);
    expect(res.headers).toHaveLength(1);
    expect(res.status).toBe('5');
    expect(res.message).toBe('thing 50%25 %E2%9C%93: not found');
  });

  it('refuses non-gRPC requests', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`).map(([n, v]) => [n, n === 'content-type' ? 'application/json' : v]), true);
    expect((await c.finished(1)).headers[0]).toContainEqual([':status', '415']);
    c.headers(3, requestHeaders(`${SVC}/Echo`).map(([n, v]) => [n, n === ':method' ? 'GET' : v]), true);
    expect((await c.finished(3)).headers[0]).toContainEqual([':status', '405']);
  });

  it('refuses compressed messages with UNIMPLEMENTED', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`, [['grpc-encoding', 'gzip']]));
    c.data(1, grpcMessage('xx', 1), true);
    const res = await c.finished(1);
    expect(res.status).toBe('12');
    expect(res.message).toContain('compressed messages are not supported');
  });

  it('refuses a request message over 16 MiB and tells the client to stop sending', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE((16 << 20) + 1, 1);
    c.data(1, Buffer.concat([prefix, Buffer.alloc(100)]));
    const res = await c.finished(1);
    expect(res.status).toBe('8');
    expect(res.message).toBe(`Received message larger than max (${(16 << 20) + 1} vs. ${16 << 20})`);
    // The request was not complete: RST_STREAM(NO_ERROR) follows the trailers.
    await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
    expect(c.response(1).rst).toBe(ErrorCode.NO_ERROR);
    // The connection goes on.
    c.unary(3, `${SVC}/Echo`, '{}');
    expect((await c.finished(3)).status).toBe('0');
  });

  it('refuses to send a response over 16 MiB', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Huge`, '{}');
    const res = await c.finished(1);
    expect(res.status).toBe('8');
    expect(res.data.length).toBe(0);
  });

  it('refuses a unary call with two messages or none', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Echo`));
    c.data(1, Buffer.concat([grpcMessage('{}'), grpcMessage('{}')]), true);
    expect((await c.finished(1)).status).toBe('13');
    c.headers(3, requestHeaders(`${SVC}/Echo`), true);
    expect((await c.finished(3)).status).toBe('13');
  });

  it('applies grpc-timeout: DEADLINE_EXCEEDED and the handler is cancelled', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Wait`, '{}', [['grpc-timeout', '50m']]);
    const res = await c.finished(1);
    expect(res.status).toBe('4');
    expect(fx.state.events).toEqual(['Wait aborted: Deadline exceeded']);
  });

  it('cancels the handler on RST_STREAM and when the connection closes', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Wait`, '{}');
    await sleep(20);
    c.send(frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, ErrorCode.CANCEL])));
    await expect.poll(() => fx.state.events).toEqual(['Wait aborted: the client cancelled the call']);
    c.unary(3, `${SVC}/Wait`, '{}');
    await sleep(20);
    c.close();
    await expect.poll(() => fx.state.events).toHaveLength(2);
  });

  it('ignores RST_STREAM and WINDOW_UPDATE for finished streams', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Echo`, '{}');
    await c.finished(1);
    c.send(frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, ErrorCode.CANCEL])));
    c.windowUpdate(1, 100);
    c.unary(3, `${SVC}/Echo`, '{}');
    expect((await c.finished(3)).status).toBe('0');
    expect(c.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('sends GOAWAY on shutdown, lets calls in flight finish and refuses new streams', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Slow`, '{"ms":150}');
    await sleep(30);
    const stopped = fx.server.shutdown(5000);
    expect(await c.goaway()).toEqual([1, ErrorCode.NO_ERROR]);
    c.unary(3, `${SVC}/Echo`, '{}');
    expect((await c.finished(3)).rst).toBe(ErrorCode.REFUSED_STREAM);
    const res = await c.finished(1);
    expect(res.status).toBe('0');
    expect(json(grpcMessages(res.data)[0] as Buffer)).toEqual({ slept: 150 });
    expect(await stopped).toBe(true);
    await c.closed;
  });

  it('closes once the client has sent GOAWAY and its streams are done', async () => {
    const c = await connect();
    c.unary(1, `${SVC}/Slow`, '{"ms":50}');
    c.send(frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)));
    expect((await c.finished(1)).status).toBe('0');
    await c.closed;
  });
});

describe('h2 server: flow control', () => {
  it('stops at the client windows and resumes on WINDOW_UPDATE and SETTINGS', async () => {
    const c = await connect({ settings: [[Setting.INITIAL_WINDOW_SIZE, 1000]] });
    c.unary(1, `${SVC}/Big`, '{"count":3,"size":50000}');
    const settled = async (bytes: number): Promise<void> => {
      await expect.poll(() => c.dataBytes(1)).toBe(bytes);
      await sleep(50);
      expect(c.dataBytes(1)).toBe(bytes);
    };
    // The stream window (1000) is the limit; the first send waits.
    await settled(1000);
    expect(fx.state.sent).toBe(0);
    // More stream window: now the connection window (65535) is the limit.
    c.windowUpdate(1, 100_000);
    await settled(65535);
    // More connection window: the stream window is the limit again (1000 + 100000).
    c.windowUpdate(0, 1_000_000);
    await settled(101_000);
    // Two messages of 50005 bytes are out, the third waits.
    expect(fx.state.sent).toBe(2);
    // A larger SETTINGS_INITIAL_WINDOW_SIZE opens every stream's window.
    c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1_000_000]]));
    const res = await c.finished(1);
    expect(res.status).toBe('0');
    expect(grpcMessages(res.data).map((m) => m.length)).toEqual([50000, 50000, 50000]);
    expect(fx.state.sent).toBe(3);
  });

  it('lets a smaller SETTINGS_INITIAL_WINDOW_SIZE drive a window negative', async () => {
    const c = await connect({ settings: [[Setting.INITIAL_WINDOW_SIZE, 10_000]] });
    c.unary(1, `${SVC}/Big`, '{"count":1,"size":30000}');
    await expect.poll(() => c.dataBytes(1)).toBe(10_000);
    // 10000 sent; the window becomes 5000 - 10000 = -5000: another 5000 must come before any data.
    c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 5000]]));
    c.windowUpdate(1, 5000);
    await sleep(50);
    expect(c.dataBytes(1)).toBe(10_000);
    c.windowUpdate(1, 25_000);
    expect((await c.finished(1)).status).toBe('0');
    expect(c.dataBytes(1)).toBe(30_005);
  });

  /** Sends `payload` on a stream as DATA frames, within the server's windows. */
  async function sendWithinWindows(c: RawClient, id: number, payload: Buffer, stalled: { is: boolean }): Promise<void> {
    let conn = 16 << 20;
    let stream = 4 << 20;
    let seen = 0;
    const credit = (): void => {
      for (; seen < c.frames.length; seen++) {
        const f = c.frames[seen] as Frame;
        if (f.type !== FrameType.WINDOW_UPDATE) continue;
        if (f.streamId === 0) conn += f.payload.readUInt32BE(0);
        else if (f.streamId === id) stream += f.payload.readUInt32BE(0);
      }
    };
    // The server's initial connection WINDOW_UPDATE is counted in `conn` already.
    await c.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    seen = c.frames.findIndex((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0) + 1;
    let pos = 0;
    while (pos < payload.length) {
      credit();
      const n = Math.min(16384, payload.length - pos, conn, stream);
      if (n <= 0) {
        stalled.is = true;
        const before = c.frames.length;
        await c.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && c.frames.indexOf(f) >= before, 10_000);
        stalled.is = false;
        continue;
      }
      c.data(id, payload.subarray(pos, pos + n), pos + n === payload.length);
      conn -= n;
      stream -= n;
      pos += n;
      if (pos % (256 << 10) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('returns receive window as data is read: a 16 MiB request stream flows', async () => {
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Sink`));
    const messages = Array.from({ length: 16 }, (_, i) => grpcMessage(Buffer.alloc(1 << 20, i)));
    await sendWithinWindows(c, 1, Buffer.concat(messages), { is: false });
    const res = await c.finished(1, 10_000);
    expect(res.status).toBe('0');
    expect(json(grpcMessages(res.data).at(-1) as Buffer)).toEqual({ total: 16 << 20 });
    expect(fx.state.sinkBytes).toBe(16 << 20);
  });

  it('holds back window while the reader is behind, and resumes when it reads', async () => {
    let open: () => void = () => undefined;
    fx.state.sinkGate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const c = await connect();
    c.headers(1, requestHeaders(`${SVC}/Sink`));
    const payload = Buffer.concat(Array.from({ length: 48 }, (_, i) => grpcMessage(Buffer.alloc(256 << 10, i))));
    const stalled = { is: false };
    const sending = sendWithinWindows(c, 1, payload, stalled);
    // The reader holds the first message; the rest piles up until the window is spent.
    await expect.poll(() => stalled.is, { timeout: 5000 }).toBe(true);
    await sleep(100);
    expect(stalled.is).toBe(true);
    expect(fx.state.sinkBytes).toBe(0);
    fx.state.sinkGate = undefined;
    open();
    await sending;
    const res = await c.finished(1, 10_000);
    expect(res.status).toBe('0');
    expect(fx.state.sinkBytes).toBe(48 * (256 << 10));
  });
});

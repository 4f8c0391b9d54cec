/** A raw HTTP/2 client for the h2 server's tests: it writes frames as told and records what comes back. */
import net from 'node:net';
import { encodeHeaders, HpackDecoder } from '../../../services/server/h2/hpack.js';
import {
  ErrorCode,
  Flag,
  frame,
  FrameReader,
  FrameType,
  PREFACE,
  settingsFrame,
  windowUpdateFrame,
  type FrameSink,
} from '../../../services/server/h2/frames.js';

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export interface Response {
  headers: [string, string][][];
  data: Buffer;
  /** grpc-status of the last header block, if any. */
  status: string | undefined;
  message: string | undefined;
  ended: boolean;
  rst: number | undefined;
}

export function grpcMessage(payload: Buffer | string, flags = 0): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

export function requestHeaders(path: string, extra: [string, string][] = []): [string, string][] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', '/run/berth/berth.sock'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}

export class RawClient implements FrameSink {
  readonly frames: Frame[] = [];
  private readonly reader = new FrameReader((1 << 24) - 1);
  private readonly hpack = new HpackDecoder();
  private readonly decoded = new Map<Frame, [string, string][]>();
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk, this, () => true));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  /** Connects; by default sends the preface and an empty SETTINGS (or the given settings). */
  static async connect(path: string, opts: { preface?: boolean; settings?: [number, number][] } = {}): Promise<RawClient> {
    const socket = net.connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    if (opts.preface !== false) client.send(PREFACE, settingsFrame(opts.settings ?? []));
    return client;
  }

  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    const f: Frame = { type, flags, streamId, payload: Buffer.from(payload) };
    if (type === FrameType.HEADERS || type === FrameType.CONTINUATION) {
      // The server never splits blocks in these tests unless asked to; decode whole HEADERS.
      const fields: string[] = [];
      this.hpack.decode(f.payload, fields);
      const pairs: [string, string][] = [];
      for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i] as string, fields[i + 1] as string]);
      this.decoded.set(f, pairs);
    }
    this.frames.push(f);
    const ready = this.waiters.filter((w) => w.pred(f));
    this.waiters = this.waiters.filter((w) => !w.pred(f));
    for (const w of ready) w.resolve(f);
  }

  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  headers(streamId: number, fields: [string, string][], endStream = false): void {
    this.send(frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, encodeHeaders(fields)));
  }

  data(streamId: number, payload: Buffer, endStream = false): void {
    this.send(frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, payload));
  }

  windowUpdate(streamId: number, increment: number): void {
    this.send(windowUpdateFrame(streamId, increment));
  }

  /** A unary request: HEADERS, then the message with END_STREAM. */
  unary(streamId: number, path: string, body: Buffer | string, extra: [string, string][] = []): void {
    this.headers(streamId, requestHeaders(path, extra));
    this.data(streamId, grpcMessage(body), true);
  }

  waitFor(pred: (f: Frame) => boolean, ms = 3000): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a frame')), ms);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  /** Waits for the stream's END_STREAM or RST_STREAM. */
  async finished(streamId: number, ms = 3000): Promise<Response> {
    await this.waitFor((f) => f.streamId === streamId && ((f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0) || f.type === FrameType.RST_STREAM), ms);
    return this.response(streamId);
  }

  response(streamId: number): Response {
    const mine = this.frames.filter((f) => f.streamId === streamId);
    const headers = mine.filter((f) => f.type === FrameType.HEADERS).map((f) => this.decoded.get(f) ?? []);
    const last = headers[headers.length - 1] ?? [];
    const rst = mine.find((f) => f.type === FrameType.RST_STREAM);
    return {
      headers,
      data: Buffer.concat(mine.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)),
      status: last.find(([n]) => n === 'grpc-status')?.[1],
      message: last.find(([n]) => n === 'grpc-message')?.[1],
      ended: mine.some((f) => f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0),
      rst: rst?.payload.readUInt32BE(0),
    };
  }

  /** The GOAWAY the server sent: [last stream id, error code]. */
  async goaway(ms = 3000): Promise<[number, number]> {
    const f = await this.waitFor((x) => x.type === FrameType.GOAWAY, ms);
    return [f.payload.readUInt32BE(0), f.payload.readUInt32BE(4)];
  }

  dataBytes(streamId: number): number {
    return this.frames.filter((f) => f.type === FrameType.DATA && f.streamId === streamId).reduce((n, f) => n + f.payload.length, 0);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Splits gRPC DATA bytes into message bodies. */
export function grpcMessages(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + 5 <= data.length) {
    const length = data.readUInt32BE(pos + 1);
    out.push(data.subarray(pos + 5, pos + 5 + length));
    pos += 5 + length;
  }
  return out;
}

export { ErrorCode, Flag, FrameType };

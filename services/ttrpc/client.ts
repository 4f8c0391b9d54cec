import net from 'node:net';
import type protobuf from 'protobufjs';
import { decodeMessage, encodeMessage, messageType, type Message } from '../server/protos.js';
import { decodeResponse, encodeRequest, type Metadata } from './envelope.js';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD, type Frame } from './frame.js';
import { Code, TtrpcError } from './status.js';

export interface CallOptions {
  /** Sent to the server as timeout_nano and enforced locally (DEADLINE_EXCEEDED). */
  timeoutMs?: number;
  /** Values may be a string or a list for repeated keys. */
  metadata?: Record<string, string | string[]>;
}

interface Pending {
  responseType: protobuf.Type;
  resolve: (value: Message) => void;
  reject: (err: TtrpcError) => void;
  timer: NodeJS.Timeout | undefined;
}

const typeOf = (t: protobuf.Type | string): protobuf.Type => (typeof t === 'string' ? messageType(t) : t);

function normalize(metadata: CallOptions['metadata']): Metadata {
  const out: Metadata = {};
  for (const [k, v] of Object.entries(metadata ?? {})) out[k] = typeof v === 'string' ? [v] : v;
  return out;
}

/**
 * A ttrpc client over one unix socket connection. Calls are multiplexed on odd stream ids; when
 * the connection closes or fails, every pending call and every later call fails with UNAVAILABLE,
 * so callers can treat that code as "reconnect".
 */
export class TtrpcClient {
  private readonly pending = new Map<number, Pending>();
  private nextStreamId = 1;
  private failure: TtrpcError | undefined;
  /** Resolves once the connection is gone, with the reason. */
  readonly closed: Promise<TtrpcError>;
  private markClosed!: (err: TtrpcError) => void;

  private constructor(private readonly socket: net.Socket) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) this.onFrame(frame);
    });
    socket.on('error', (err) => this.fail(`connection error: ${err.message}`));
    socket.on('close', () => this.fail('connection closed'));
  }

  /** Connects to a socket path (a `unix://` prefix is accepted, as shims print it). */
  static connect(address: string, timeoutMs = 10_000): Promise<TtrpcClient> {
    const path = address.replace(/^unix:\/\//, '');
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TtrpcError(Code.UNAVAILABLE, `connect ${path}: timed out`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new TtrpcError(Code.UNAVAILABLE, `connect ${path}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TtrpcClient(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.failure !== undefined;
  }

  call<Res extends object = Message>(
    service: string,
    method: string,
    requestType: protobuf.Type | string,
    responseType: protobuf.Type | string,
    request: object,
    opts: CallOptions = {},
  ): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    let frame: Buffer;
    const streamId = this.allocateStreamId();
    try {
      const payload = encodeMessage(typeOf(requestType), request);
      const envelope = encodeRequest({
        service,
        method,
        payload,
        timeoutNano: opts.timeoutMs !== undefined ? opts.timeoutMs * 1e6 : 0,
        metadata: normalize(opts.metadata),
      });
      if (envelope.length > MAX_PAYLOAD) {
        return Promise.reject(
          new TtrpcError(Code.RESOURCE_EXHAUSTED, `${service}/${method}: request of ${envelope.length} bytes exceeds the ${MAX_PAYLOAD}-byte limit`),
        );
      }
      frame = encodeFrame(streamId, FrameType.Request, envelope);
    } catch (err) {
      return Promise.reject(new TtrpcError(Code.INVALID_ARGUMENT, `${service}/${method}: ${(err as Error).message}`));
    }
    return new Promise<Res>((resolve, reject) => {
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.pending.delete(streamId);
              reject(new TtrpcError(Code.DEADLINE_EXCEEDED, `${service}/${method}: context deadline exceeded`));
            }, opts.timeoutMs);
      this.pending.set(streamId, {
        responseType: typeOf(responseType),
        resolve: resolve as (value: Message) => void,
        reject,
        timer,
      });
      this.socket.write(frame);
    });
  }

  close(): void {
    this.socket.destroy();
    this.fail('client closed');
  }

  private allocateStreamId(): number {
    const id = this.nextStreamId;
    // Stream ids are uint32 and client-initiated ones odd; wrap long before overflow.
    this.nextStreamId = id >= 0x7fff_fffd ? 1 : id + 2;
    return id;
  }

  private onFrame(frame: Frame): void {
    if (frame.type !== FrameType.Response) return;
    const call = this.pending.get(frame.streamId);
    if (!call) return; // timed out locally; the late answer is dropped
    this.pending.delete(frame.streamId);
    clearTimeout(call.timer);
    if (frame.oversized !== undefined) {
      call.reject(new TtrpcError(Code.RESOURCE_EXHAUSTED, `response of ${frame.oversized} bytes exceeds the limit`));
      return;
    }
    try {
      const res = decodeResponse(frame.payload);
      if (res.status && res.status.code !== Code.OK) {
        call.reject(new TtrpcError(res.status.code, res.status.message));
        return;
      }
      call.resolve(decodeMessage(call.responseType, res.payload));
    } catch (err) {
      call.reject(new TtrpcError(Code.INTERNAL, `undecodable response: ${(err as Error).message}`));
    }
  }

  private fail(reason: string): void {
    if (this.failure) return;
    this.failure = new TtrpcError(Code.UNAVAILABLE, `ttrpc: ${reason}`);
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(this.failure);
    }
    this.pending.clear();
    this.markClosed(this.failure);
  }
}

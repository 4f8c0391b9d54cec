/**
 * One gRPC call on an HTTP/2 stream: length-prefixed messages in (RFC: gRPC over HTTP/2,
 * "Length-Prefixed-Message") and out, the deadline, cancellation, and the status at the end.
 */
import type { Message } from '../protos.js';
import { ErrorCode } from './frames.js';
import type { H2Stream, StreamHandler } from './stream.js';
import { Code } from '../../codes.js';
import { GrpcStatusError, OK_TRAILERS, RESPONSE_HEADERS, trailers, trailersOnly } from './status.js';

/** containerd's limit, which ctr also sets: 16 MiB each way. */
export const MAX_MESSAGE = 16 << 20;

/** Metadata of a call: custom request headers; `-bin` values base64-decoded. */
export type CallMetadata = ReadonlyMap<string, string | Buffer>;

/** A method as the server routes it. */
export interface GrpcMethod {
  /** Client streaming (Content.Write): the call starts at once and reads messages itself. */
  readonly requestStream: boolean;
  readonly decode: (bytes: Buffer) => Message;
  readonly encode: (message: Message) => Buffer;
  /** Starts the call; `request` is the single request message, undefined for request streams. */
  readonly start: (call: GrpcCall, request: Message | undefined) => void;
}

/** Received messages held for a slow reader beyond this stop the stream's window (back-pressure). */
const INBOX_HIGH_WATER = 1 << 20;

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = Buffer.alloc(0);

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

export class GrpcCall implements StreamHandler, AsyncIterable<Message> {
  /** The status is sent (or the call was cancelled): nothing more goes out. */
  private finished = false;
  private cancelReason: GrpcStatusError | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drainWaiter: Waiter<void> | undefined;

  // Deframing state: a 5-byte prefix possibly split across DATA frames, then the body.
  private prefix: Buffer | undefined;
  private prefixHave = 0;
  private bodyLeft = -1;
  private bodyParts: Buffer[] = [];

  // A unary request; or, for request streams, messages waiting for the reader.
  private request: Buffer | undefined;
  private inbox: Buffer[] = [];
  private inboxBytes = 0;
  private inputEnded = false;
  private readerGone = false;
  private reader: Waiter<IteratorResult<Message>> | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: GrpcMethod,
    readonly metadata: CallMetadata,
    timeoutMs: number | undefined,
  ) {
    stream.handler = this;
    // setTimeout cannot wait longer than 2^31-1 ms; such deadlines are as good as none.
    if (timeoutMs !== undefined && timeoutMs < 0x7fffffff) {
      this.timer = setTimeout(() => this.deadlineExceeded(), Math.ceil(timeoutMs));
    }
  }

  /** Aborted when the client cancels, the connection closes or the deadline passes; made on first use. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.cancelReason !== undefined) this.controller.abort(this.cancelReason);
    }
    return this.controller.signal;
  }

  get cancelled(): boolean {
    return this.cancelReason !== undefined;
  }

  /** Starts a request-streaming call (its handler reads messages as they come). */
  startStreaming(): void {
    this.run(undefined);
  }

  // ---- StreamHandler ----

  onData(data: Buffer): void {
    if (this.finished) return;
    let pos = 0;
    const n = data.length;
    while (pos < n) {
      if (this.bodyLeft < 0) {
        let flags: number;
        let length: number;
        if (this.prefixHave === 0 && n - pos >= 5) {
          flags = data[pos] as number;
          length = data.readUInt32BE(pos + 1);
          pos += 5;
        } else {
          const prefix = (this.prefix ??= Buffer.alloc(5));
          const take = Math.min(5 - this.prefixHave, n - pos);
          data.copy(prefix, this.prefixHave, pos, pos + take);
          this.prefixHave += take;
          pos += take;
          if (this.prefixHave < 5) return;
          this.prefixHave = 0;
          flags = prefix[0] as number;
          length = prefix.readUInt32BE(1);
        }
        if (flags !== 0) {
          this.fail(
            flags === 1 ? Code.UNIMPLEMENTED : Code.INTERNAL,
            flags === 1
              ? 'compressed messages are not supported: berthd offers no grpc-accept-encoding, send messages uncompressed'
              : `invalid message flags 0x${flags.toString(16)}`,
          );
          return;
        }
        if (length > MAX_MESSAGE) {
          this.fail(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${MAX_MESSAGE})`);
          return;
        }
        if (n - pos >= length) {
          this.message(length === 0 ? EMPTY : data.subarray(pos, pos + length));
          pos += length;
          if (this.finished) return;
          continue;
        }
        this.bodyLeft = length;
      }
      const take = Math.min(this.bodyLeft, n - pos);
      this.bodyParts.push(data.subarray(pos, pos + take));
      pos += take;
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) {
        const parts = this.bodyParts;
        this.bodyParts = [];
        this.bodyLeft = -1;
        this.message(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
        if (this.finished) return;
      }
    }
  }

  onEnd(): void {
    if (this.finished) return;
    if (this.bodyLeft >= 0 || this.prefixHave > 0) {
      this.fail(Code.INTERNAL, 'the request ended inside a message');
      return;
    }
    if (this.method.requestStream) {
      this.inputEnded = true;
      this.wakeReader();
      return;
    }
    if (this.request === undefined) {
      this.fail(Code.INTERNAL, 'the request carried no message');
      return;
    }
    let request: Message;
    try {
      request = this.method.decode(this.request);
    } catch (e) {
      this.fail(Code.INTERNAL, `cannot parse the request message: ${errorMessage(e)}`);
      return;
    }
    this.request = undefined;
    this.run(request);
  }

  onReset(code: number): void {
    this.cancel(new GrpcStatusError(Code.CANCELLED, code === ErrorCode.CANCEL || code === ErrorCode.NO_ERROR ? 'the client cancelled the call' : `the stream was reset (HTTP/2 error ${code})`));
  }

  onDrain(): void {
    const waiter = this.drainWaiter;
    if (waiter === undefined) return;
    this.drainWaiter = undefined;
    waiter.resolve();
  }

  // ---- messages in ----

  private message(body: Buffer): void {
    if (!this.method.requestStream) {
      if (this.request !== undefined) {
        this.fail(Code.INTERNAL, 'more than one request message for a method that takes one');
        return;
      }
      this.request = body;
      return;
    }
    if (this.readerGone) return;
    this.inbox.push(body);
    this.inboxBytes += body.length;
    if (this.inboxBytes >= INBOX_HIGH_WATER) this.stream.setPaused(true);
    this.wakeReader();
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => this.nextMessage(),
      return: () => {
        // The reader stopped early (it failed or is done): what else comes is dropped.
        this.readerGone = true;
        this.inbox = [];
        this.inboxBytes = 0;
        this.stream.setPaused(false);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private nextMessage(): Promise<IteratorResult<Message>> {
    if (this.cancelReason !== undefined) return Promise.reject(this.cancelReason);
    const body = this.inbox.shift();
    if (body !== undefined) {
      this.inboxBytes -= body.length;
      if (this.inboxBytes < INBOX_HIGH_WATER / 2) this.stream.setPaused(false);
      try {
        return Promise.resolve({ value: this.method.decode(body), done: false });
      } catch (e) {
        const err = new GrpcStatusError(Code.INTERNAL, `cannot parse a request message: ${errorMessage(e)}`);
        return Promise.reject(err);
      }
    }
    if (this.inputEnded || this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.reader = { resolve, reject };
    });
  }

  private wakeReader(): void {
    const reader = this.reader;
    if (reader === undefined) return;
    this.reader = undefined;
    this.nextMessage().then(reader.resolve, reader.reject);
  }

  // ---- messages out ----

  /**
   * Sends one message. Resolves at once while the stream's window and the socket keep up, else
   * when they have taken it (back-pressure); rejects once the call is over.
   */
  send(message: Message): Promise<void> {
    if (this.finished) return Promise.reject(this.cancelReason ?? new GrpcStatusError(Code.CANCELLED, 'the call has ended'));
    const body = this.encode(message);
    if (body === undefined) return Promise.reject(this.cancelReason ?? new GrpcStatusError(Code.INTERNAL, 'the call has ended'));
    this.writeMessage(body);
    if (!this.stream.backlogged) return RESOLVED;
    return new Promise((resolve, reject) => {
      this.drainWaiter = { resolve, reject };
    });
  }

  /** A unary call's answer: headers, the message and OK trailers in one go. */
  respond(message: Message): void {
    if (this.finished) return;
    const body = this.encode(message);
    if (body === undefined) return;
    if (this.stream.writeResponse(RESPONSE_HEADERS, body, OK_TRAILERS)) {
      this.finished = true;
      this.clearTimer();
      return;
    }
    this.writeMessage(body);
    this.end(Code.OK, '');
  }

  /** Ends the call with a status (Trailers-Only if nothing was sent). */
  end(code: number, message: string): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    this.inbox = [];
    this.stream.end(this.stream.headersSent ? trailers(code, message) : trailersOnly(code, message));
  }

  /** Serialises a response, or ends the call with the error and returns undefined. */
  private encode(message: Message): Buffer | undefined {
    let body: Buffer;
    try {
      body = this.method.encode(message);
    } catch (e) {
      this.fail(Code.INTERNAL, `cannot serialise the response: ${errorMessage(e)}`);
      return undefined;
    }
    if (body.length > MAX_MESSAGE) {
      this.fail(Code.RESOURCE_EXHAUSTED, `Sent message larger than max (${body.length} vs. ${MAX_MESSAGE})`);
      return undefined;
    }
    return body;
  }

  private writeMessage(body: Buffer): void {
    if (!this.stream.headersSent) this.stream.sendHeaders(RESPONSE_HEADERS);
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.length, 1);
    this.stream.write(prefix, body);
  }

  // ---- endings ----

  private run(request: Message | undefined): void {
    try {
      this.method.start(this, request);
    } catch (e) {
      this.fail(Code.INTERNAL, errorMessage(e));
    }
  }

  /** Ends the call with an error status and stops its handler. */
  private fail(code: number, message: string): void {
    if (this.finished) return;
    this.end(code, message);
    this.abort(new GrpcStatusError(code, message));
  }

  private deadlineExceeded(): void {
    this.timer = undefined;
    if (this.finished) return;
    if (this.stream.queued > 0) {
      // Trailers would wait behind data the client is not reading: reset instead.
      this.finished = true;
      this.stream.reset(ErrorCode.CANCEL);
    } else {
      this.end(Code.DEADLINE_EXCEEDED, 'Deadline exceeded');
    }
    this.abort(new GrpcStatusError(Code.DEADLINE_EXCEEDED, 'Deadline exceeded'));
  }

  /** The client went away: nothing more is sent; the handler's signal and pending calls fail. */
  private cancel(reason: GrpcStatusError): void {
    this.finished = true;
    this.clearTimer();
    this.abort(reason);
  }

  private abort(reason: GrpcStatusError): void {
    if (this.cancelReason !== undefined) return;
    this.cancelReason = reason;
    this.inbox = [];
    this.controller?.abort(reason);
    const drain = this.drainWaiter;
    this.drainWaiter = undefined;
    drain?.reject(reason);
    const reader = this.reader;
    this.reader = undefined;
    reader?.reject(reason);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

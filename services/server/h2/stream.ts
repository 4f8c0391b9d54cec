/**
 * One HTTP/2 stream as the server sees it: its flow-control windows both ways, the data waiting
 * for send window, and the ordering rule that trailers follow the last byte of data.
 */
import type { Connection } from './connection.js';

/** What a stream tells its user (the gRPC call on it). */
export interface StreamHandler {
  /** Payload of a DATA frame, padding removed. The buffer may be kept. */
  onData(data: Buffer): void;
  /** The peer sent END_STREAM. */
  onEnd(): void;
  /** The stream is gone before we ended it: RST_STREAM from the peer, or the connection closed. */
  onReset(code: number): void;
  /** Everything written so far has left the stream's queue and the connection can take more. */
  onDrain(): void;
}

const NO_HANDLER: StreamHandler = {
  onData: () => undefined,
  onEnd: () => undefined,
  onReset: () => undefined,
  onDrain: () => undefined,
};

export class H2Stream {
  handler: StreamHandler = NO_HANDLER;
  /** How much the peer lets us send on this stream (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** How much more the peer may send us before we return window. */
  recvWindow: number;
  /** Bytes received and not yet returned to the peer with WINDOW_UPDATE. */
  recvUnacked = 0;
  /** While paused, received bytes are not returned: the reader is behind (back-pressure). */
  paused = false;
  remoteEnded = false;
  /** Our END_STREAM (trailers) or RST_STREAM is written: nothing more goes out. */
  localEnded = false;
  /** Removed from the connection: no frame in either direction concerns us any more. */
  closed = false;
  headersSent = false;

  /** Data waiting for send window, as written; `queueOffset` bytes of queue[0] are already sent. */
  queue: Buffer[] = [];
  queueOffset = 0;
  queued = 0;
  /** Trailers held until the queue is empty. */
  trailers: Buffer | undefined;

  constructor(
    readonly id: number,
    private readonly conn: Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Response headers; not flow controlled, so they go out at once (before any data). */
  sendHeaders(block: Buffer): void {
    if (this.localEnded || this.closed) return;
    this.headersSent = true;
    this.conn.writeHeaders(this.id, block, false);
  }

  /** The whole response in one go if it fits (see Connection.writeResponse); false if not. */
  writeResponse(headers: Buffer, body: Buffer, trailers: Buffer): boolean {
    return this.conn.writeResponse(this, headers, body, trailers);
  }

  /** Queues data (one or more buffers, sent back to back). */
  write(a: Buffer, b?: Buffer): void {
    if (this.localEnded || this.closed) return;
    this.queue.push(a);
    this.queued += a.length;
    if (b !== undefined) {
      this.queue.push(b);
      this.queued += b.length;
    }
    this.conn.pump(this);
  }

  /** True while written data waits for window or the connection is congested. */
  get backlogged(): boolean {
    return this.queued > 0 || this.conn.congested;
  }

  /** Ends our side with a trailer block (END_STREAM), after all queued data. */
  end(block: Buffer): void {
    if (this.localEnded || this.closed) return;
    this.trailers = block;
    this.conn.pump(this);
  }

  /** Abandons the stream with RST_STREAM: queued data and trailers are dropped. */
  reset(code: number): void {
    if (this.closed) return;
    this.conn.resetStream(this, code);
  }

  /** Stops (true) or resumes (false) returning receive window to the peer. */
  setPaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    if (!paused) this.conn.replenish(this, true);
  }
}

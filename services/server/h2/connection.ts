/**
 * The server side of one HTTP/2 connection (RFC 7540) over a net.Socket: preface, SETTINGS, PING,
 * GOAWAY, RST_STREAM, flow control both ways, HEADERS + CONTINUATION, DATA with padding. Streams
 * are handed to a RequestHandler (the gRPC layer) once their request headers are decoded.
 *
 * Output is gathered in a list and written once per tick (process.nextTick), so a unary response
 * (HEADERS, DATA, trailers) and the WINDOW_UPDATEs and acks of the same read leave in one write.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  ErrorCode,
  Flag,
  frame,
  FRAME_HEADER_LENGTH,
  frameHeader,
  FrameReader,
  FrameType,
  goawayFrame,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW_SIZE,
  PREFACE,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  StreamError,
  windowUpdateFrame,
  writeFrameHeader,
  type FrameSink,
} from './frames.js';
import { HpackDecoder, HpackError } from './hpack.js';
import { H2Stream } from './stream.js';

export interface ConnectionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce and enforce (REFUSED_STREAM beyond it). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE we announce: how much a client may send per stream unread. */
  streamWindow: number;
  /** Our connection-level receive window (raised from 65535 by a WINDOW_UPDATE at start). */
  connectionWindow: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we announce; larger request headers are the handler's to refuse. */
  maxHeaderListSize: number;
}

/** What berthd announces and enforces on every connection. */
export const CONNECTION_OPTIONS: ConnectionOptions = {
  maxConcurrentStreams: 1000,
  streamWindow: 4 << 20,
  connectionWindow: 16 << 20,
  maxHeaderListSize: 64 << 10,
};

export interface RequestHandler {
  /**
   * A new stream's request headers, as name, value, name, value... and their header list size.
   * The handler sets `stream.handler` (or answers and ends the stream at once).
   */
  onRequest(stream: H2Stream, headers: string[], listSize: number): void;
}

/** Output gathered beyond this stops DATA framing until it is written (bounds memory per connection). */
const OUT_HIGH_WATER = 1 << 20;

/**
 * How long a PING ack may wait for other output to travel with. grpc-go clients send a PING (with
 * a WINDOW_UPDATE) for their bandwidth-delay estimate whenever data arrives and no such PING is
 * outstanding: after nearly every response. Acking each at once costs a socket write per call on
 * our side and a read on theirs. A held ack leaves at the end of the next write (the next response,
 * usually a millisecond or two later; at once while data streams) or after this delay. Behind the
 * response's DATA, it also finds the client's estimate still waiting, so the client sends its next
 * PING one response later: half the PINGs. RFC 7540 §6.7 asks for prompt acks (SHOULD); the delay
 * only lengthens the round trip the client measures, which makes its estimate no smaller.
 */
const PING_ACK_DELAY_MS = 20;

interface HeaderBlock {
  streamId: number;
  endStream: boolean;
  parts: Buffer[];
  length: number;
}

export class Connection implements FrameSink {
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  private readonly hpack = new HpackDecoder();
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with data (or a drain notice) waiting for window or for the socket. */
  private readonly blocked = new Set<H2Stream>();
  private prefaceLeft = PREFACE.length;
  private settingsSeen = false;
  private block: HeaderBlock | undefined;
  /** Highest stream id the client has opened (or tried to). */
  lastStreamId = 0;
  private goawaySent = false;
  private goawayReceived = false;
  /** No more reading: the connection is ending. */
  private closing = false;
  private closed = false;

  // What the peer lets us send.
  private sendWindow = DEFAULT_WINDOW_SIZE;
  private peerInitialWindow = DEFAULT_WINDOW_SIZE;
  private peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;

  // What we let the peer send.
  private recvWindow: number;
  private recvUnacked = 0;
  private readonly connUpdateThreshold: number;
  private readonly streamUpdateThreshold: number;

  private out: Buffer[] = [];
  private outLength = 0;
  private flushScheduled = false;
  private pingAcks: Buffer[] = [];
  private pingTimer: NodeJS.Timeout | undefined;
  /** The socket refused more (write() returned false) and has not drained yet. */
  congested = false;

  constructor(
    private readonly socket: Socket,
    private readonly handler: RequestHandler,
    private readonly log: Logger,
    private readonly options: ConnectionOptions,
    private readonly onClosed: (conn: Connection) => void,
  ) {
    this.recvWindow = options.connectionWindow;
    this.connUpdateThreshold = Math.max(1, Math.floor(options.connectionWindow / 4));
    this.streamUpdateThreshold = Math.max(1, Math.floor(options.streamWindow / 4));
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A client that exits without closing its connection resets it: nothing to report.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') this.log.debug('connection error', { error: err.message });
    });
    socket.on('close', () => this.onSocketClose());
    // Our preface: SETTINGS, then the connection window raised to what we mean to allow.
    this.write(
      settingsFrame([
        [Setting.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
        [Setting.INITIAL_WINDOW_SIZE, options.streamWindow],
        [Setting.MAX_HEADER_LIST_SIZE, options.maxHeaderListSize],
      ]),
    );
    if (options.connectionWindow > DEFAULT_WINDOW_SIZE) {
      this.write(windowUpdateFrame(0, options.connectionWindow - DEFAULT_WINDOW_SIZE));
    }
  }

  // ---- input ----

  private readonly proceed = (): boolean => !this.closing;

  private onBytes(chunk: Buffer): void {
    if (this.closing) return;
    try {
      if (this.prefaceLeft > 0) {
        const rest = this.checkPreface(chunk);
        if (rest === undefined) return;
        chunk = rest;
      }
      this.reader.push(chunk, this, this.proceed);
    } catch (e) {
      if (e instanceof ConnectionError) {
        this.fail(e.code, e.message);
      } else {
        this.log.error('HTTP/2 connection failed', { error: e instanceof Error ? e.message : String(e) });
        this.fail(ErrorCode.INTERNAL_ERROR, 'internal error');
      }
    }
  }

  /** Matches the client preface; returns the bytes after it, or undefined if it is not complete. */
  private checkPreface(chunk: Buffer): Buffer | undefined {
    const at = PREFACE.length - this.prefaceLeft;
    const n = Math.min(this.prefaceLeft, chunk.length);
    if (chunk.compare(PREFACE, at, at + n, 0, n) !== 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'invalid HTTP/2 connection preface (is the client speaking gRPC?)');
    }
    this.prefaceLeft -= n;
    return this.prefaceLeft > 0 ? undefined : chunk.subarray(n);
  }

  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen && (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame after the preface must be SETTINGS');
    }
    if (this.block !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.block.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'header block interrupted: expected CONTINUATION');
    }
    try {
      switch (type) {
        case FrameType.DATA:
          return this.onData(flags, streamId, payload);
        case FrameType.HEADERS:
          return this.onHeaders(flags, streamId, payload);
        case FrameType.CONTINUATION:
          return this.onContinuation(flags, streamId, payload);
        case FrameType.PRIORITY:
          return this.onPriority(streamId, payload);
        case FrameType.RST_STREAM:
          return this.onRstStream(streamId, payload);
        case FrameType.SETTINGS:
          return this.onSettings(flags, streamId, payload);
        case FrameType.PUSH_PROMISE:
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
        case FrameType.PING:
          return this.onPing(flags, streamId, payload);
        case FrameType.GOAWAY:
          return this.onGoaway(streamId, payload);
        case FrameType.WINDOW_UPDATE:
          return this.onWindowUpdate(streamId, payload);
        default:
          return; // unknown frame types are ignored (§4.1)
      }
    } catch (e) {
      if (!(e instanceof StreamError)) throw e;
      this.log.debug('HTTP/2 stream error', { stream: e.streamId, code: e.code, error: e.message });
      const stream = this.streams.get(e.streamId);
      if (stream) {
        this.resetStream(stream, e.code);
        stream.handler.onReset(e.code);
      } else {
        this.write(rstStreamFrame(e.streamId, e.code));
      }
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = payload.length;
    if (length > this.recvWindow) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    // The connection window counts every DATA byte, padding and frames of closed streams included,
    // and is returned at once: per-stream windows bound what is buffered.
    this.recvWindow -= length;
    this.recvUnacked += length;
    if (this.recvUnacked >= this.connUpdateThreshold) {
      this.write(windowUpdateFrame(0, this.recvUnacked));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    const data = unpad(flags, payload, 0);
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return; // a stream we already closed: data in flight when it ended
    }
    if (stream.remoteEnded) throw new StreamError(id, ErrorCode.STREAM_CLOSED, 'DATA after END_STREAM');
    if (length > stream.recvWindow) throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    stream.recvWindow -= length;
    stream.recvUnacked += length;
    if (data.length > 0) stream.handler.onData(data);
    if (flags & Flag.END_STREAM) this.remoteEnd(stream);
    else this.replenish(stream, false);
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const skip = flags & Flag.PRIORITY ? 5 : 0;
    const fragment = unpad(flags, payload, skip);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.onHeaderBlock(id, endStream, fragment);
    } else {
      this.block = { streamId: id, endStream, parts: [fragment], length: fragment.length };
    }
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const block = this.block;
    if (block === undefined) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    block.parts.push(payload);
    block.length += payload.length;
    // A header block is decoded whole; a client piling up CONTINUATIONs is cut off.
    if (block.length > 4 * this.options.maxHeaderListSize) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if (flags & Flag.END_HEADERS) {
      this.block = undefined;
      this.onHeaderBlock(id, block.endStream, block.parts.length === 1 ? (block.parts[0] as Buffer) : Buffer.concat(block.parts, block.length));
    }
  }

  private onHeaderBlock(id: number, endStream: boolean, block: Buffer): void {
    // Decoded even for streams we refuse: the dynamic table must follow every block.
    const fields: string[] = [];
    let listSize: number;
    try {
      listSize = this.hpack.decode(block, fields);
    } catch (e) {
      if (e instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, `HPACK: ${e.message}`);
      throw e;
    }
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: they must end the stream (§8.1).
      if (!endStream) throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, 'second HEADERS without END_STREAM');
      if (existing.remoteEnded) throw new StreamError(id, ErrorCode.STREAM_CLOSED, 'HEADERS after END_STREAM');
      this.remoteEnd(existing);
      return;
    }
    if (id <= this.lastStreamId) return; // a stream already closed (reset by us): ignored
    if (id % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `client opened even stream ${id}`);
    this.lastStreamId = id;
    if (this.goawaySent || this.streams.size >= this.options.maxConcurrentStreams) {
      this.write(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    const stream = new H2Stream(id, this, this.peerInitialWindow, this.options.streamWindow);
    this.streams.set(id, stream);
    stream.remoteEnded = endStream;
    this.handler.onRequest(stream, fields, listSize);
    if (endStream && !stream.closed) stream.handler.onEnd();
  }

  private remoteEnd(stream: H2Stream): void {
    if (stream.closed) return;
    stream.remoteEnded = true;
    if (stream.localEnded) {
      this.dropStream(stream);
      return;
    }
    stream.handler.onEnd();
  }

  private onPriority(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    if (payload.length !== 5) throw new StreamError(id, ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY frame is not 5 bytes');
    // Priorities are advisory and ignored.
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM frame is not 4 bytes');
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
      return; // Go clients reset streams they have finished with: nothing to do
    }
    const code = payload.readUInt32BE(0);
    stream.localEnded = true;
    this.dropStream(stream);
    stream.handler.onReset(code);
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ack with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length is not a multiple of 6');
    let windowGrew = false;
    for (let pos = 0; pos < payload.length; pos += 6) {
      const setting = payload.readUInt16BE(pos);
      const value = payload.readUInt32BE(pos + 2);
      switch (setting) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH must be 0 or 1');
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const stream of this.streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW_SIZE) {
              throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window');
            }
          }
          if (delta > 0) windowGrew = true;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE) {
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} out of range`);
          }
          this.peerMaxFrame = value;
          break;
        default:
          // HEADER_TABLE_SIZE: our encoder never indexes, so any table size suits it.
          // MAX_CONCURRENT_STREAMS: we open no streams. MAX_HEADER_LIST_SIZE: advisory.
          break;
      }
    }
    this.settingsSeen = true;
    this.write(SETTINGS_ACK);
    if (windowGrew) this.pumpBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING frame is not 8 bytes');
    if (flags & Flag.ACK) return;
    this.pingAcks.push(frame(FrameType.PING, Flag.ACK, 0, payload));
    if (this.pingTimer === undefined) {
      this.pingTimer = setTimeout(this.sendPingAcks, PING_ACK_DELAY_MS);
      this.pingTimer.unref();
    }
  }

  private readonly sendPingAcks = (): void => {
    this.pingTimer = undefined;
    if (this.pingAcks.length === 0 || this.closing) return;
    this.scheduleFlush();
  };

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY frame shorter than 8 bytes');
    const code = payload.readUInt32BE(4);
    if (code !== ErrorCode.NO_ERROR) {
      this.log.debug('client sent GOAWAY', { code, debug: payload.subarray(8).toString('utf8') });
    }
    // The client opens no more streams; the ones it has finish, then the connection closes.
    this.goawayReceived = true;
    if (this.streams.size === 0) this.close();
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE frame is not 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (increment === 0) throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_SIZE) throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    this.pump(stream);
  }

  // ---- receive window ----

  /** Returns a stream's consumed bytes to the peer when enough have gathered (or `force`). */
  replenish(stream: H2Stream, force: boolean): void {
    if (stream.closed || stream.remoteEnded || stream.paused || stream.recvUnacked === 0) return;
    if (!force && stream.recvUnacked < this.streamUpdateThreshold) return;
    this.write(windowUpdateFrame(stream.id, stream.recvUnacked));
    stream.recvWindow += stream.recvUnacked;
    stream.recvUnacked = 0;
  }

  // ---- output ----

  private write(buf: Buffer): void {
    if (this.closing) return;
    this.out.push(buf);
    this.outLength += buf.length;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.pingAcks.length > 0) {
      for (const ack of this.pingAcks) {
        this.out.push(ack);
        this.outLength += ack.length;
      }
      this.pingAcks = [];
      if (this.pingTimer !== undefined) {
        clearTimeout(this.pingTimer);
        this.pingTimer = undefined;
      }
    }
    if (this.outLength === 0 || this.closed) {
      this.out = [];
      this.outLength = 0;
      return;
    }
    const out = this.out;
    const data = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, this.outLength);
    this.out = [];
    this.outLength = 0;
    if (!this.socket.write(data)) this.congested = true;
    else if (this.blocked.size > 0) this.pumpBlocked();
  };

  private onSocketDrain(): void {
    this.congested = false;
    this.pumpBlocked();
  }

  /**
   * A whole response of one message (HEADERS, DATA, trailers) built in one buffer, when nothing
   * else is queued on the stream and the message fits the windows and one frame; false otherwise
   * (the caller takes the general path). Unary calls answer this way.
   */
  writeResponse(stream: H2Stream, headers: Buffer, body: Buffer, trailers: Buffer): boolean {
    const dataLength = 5 + body.length;
    if (
      stream.closed ||
      stream.localEnded ||
      stream.headersSent ||
      stream.queued > 0 ||
      dataLength > this.peerMaxFrame ||
      dataLength > this.sendWindow ||
      dataLength > stream.sendWindow ||
      headers.length > this.peerMaxFrame ||
      trailers.length > this.peerMaxFrame
    ) {
      return false;
    }
    const id = stream.id;
    const rst = !stream.remoteEnded;
    const buf = Buffer.allocUnsafe(3 * FRAME_HEADER_LENGTH + headers.length + dataLength + trailers.length + (rst ? FRAME_HEADER_LENGTH + 4 : 0));
    let pos = 0;
    writeFrameHeader(buf, pos, headers.length, FrameType.HEADERS, Flag.END_HEADERS, id);
    pos += FRAME_HEADER_LENGTH;
    pos += headers.copy(buf, pos);
    writeFrameHeader(buf, pos, dataLength, FrameType.DATA, 0, id);
    pos += FRAME_HEADER_LENGTH;
    buf[pos] = 0;
    buf.writeUInt32BE(body.length, pos + 1);
    pos += 5;
    pos += body.copy(buf, pos);
    writeFrameHeader(buf, pos, trailers.length, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id);
    pos += FRAME_HEADER_LENGTH;
    pos += trailers.copy(buf, pos);
    if (rst) {
      writeFrameHeader(buf, pos, 4, FrameType.RST_STREAM, 0, id);
      buf.writeUInt32BE(ErrorCode.NO_ERROR, pos + FRAME_HEADER_LENGTH);
    }
    this.write(buf);
    this.sendWindow -= dataLength;
    stream.sendWindow -= dataLength;
    stream.headersSent = true;
    stream.localEnded = true;
    this.dropStream(stream);
    return true;
  }

  /** HEADERS (+ CONTINUATION when the block exceeds the peer's frame size). */
  writeHeaders(id: number, block: Buffer, endStream: boolean): void {
    const end = endStream ? Flag.END_STREAM : 0;
    if (block.length <= this.peerMaxFrame) {
      // The block is usually a precomputed one (status.ts): written as is, not copied into a frame.
      this.write(frameHeader(block.length, FrameType.HEADERS, Flag.END_HEADERS | end, id));
      this.write(block);
      return;
    }
    let pos = 0;
    while (pos < block.length) {
      const n = Math.min(this.peerMaxFrame, block.length - pos);
      const last = pos + n === block.length;
      const type = pos === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (pos === 0 ? end : 0) | (last ? Flag.END_HEADERS : 0);
      this.write(frame(type, flags, id, block.subarray(pos, pos + n)));
      pos += n;
    }
  }

  /**
   * Sends what a stream has queued as far as the windows and the socket allow, then its trailers
   * if it has ended; tells its handler when everything is out.
   */
  pump(stream: H2Stream): void {
    if (stream.closed) return;
    while (stream.queued > 0) {
      const n = Math.min(stream.queued, this.sendWindow, stream.sendWindow, this.peerMaxFrame);
      if (n <= 0 || this.congested || this.outLength >= OUT_HIGH_WATER) {
        this.blocked.add(stream);
        return;
      }
      this.writeData(stream, n);
    }
    if (stream.trailers !== undefined) {
      const trailers = stream.trailers;
      stream.trailers = undefined;
      this.blocked.delete(stream);
      this.writeHeaders(stream.id, trailers, true);
      stream.localEnded = true;
      // A server may end its response before the request is complete: RST_STREAM(NO_ERROR)
      // tells the client to stop sending (§8.1).
      if (!stream.remoteEnded) this.write(rstStreamFrame(stream.id, ErrorCode.NO_ERROR));
      this.dropStream(stream);
      return;
    }
    if (this.congested || this.outLength >= OUT_HIGH_WATER) {
      this.blocked.add(stream);
      return;
    }
    if (this.blocked.delete(stream)) stream.handler.onDrain();
  }

  private pumpBlocked(): void {
    if (this.blocked.size === 0) return;
    for (const stream of [...this.blocked]) this.pump(stream);
  }

  private writeData(stream: H2Stream, n: number): void {
    this.write(frameHeader(n, FrameType.DATA, 0, stream.id));
    let left = n;
    while (left > 0) {
      const head = stream.queue[0] as Buffer;
      const avail = head.length - stream.queueOffset;
      if (avail <= left) {
        this.write(stream.queueOffset === 0 ? head : head.subarray(stream.queueOffset));
        stream.queue.shift();
        stream.queueOffset = 0;
        left -= avail;
      } else {
        this.write(head.subarray(stream.queueOffset, stream.queueOffset + left));
        stream.queueOffset += left;
        left = 0;
      }
    }
    stream.queued -= n;
    stream.sendWindow -= n;
    this.sendWindow -= n;
  }

  /** Ends a stream with RST_STREAM (no handler notice: the caller knows). */
  resetStream(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.write(rstStreamFrame(stream.id, code));
    stream.localEnded = true;
    stream.queue = [];
    stream.queued = 0;
    stream.trailers = undefined;
    this.dropStream(stream);
  }

  private dropStream(stream: H2Stream): void {
    stream.closed = true;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    if ((this.goawaySent || this.goawayReceived) && this.streams.size === 0) this.close();
  }

  // ---- connection lifecycle ----

  /** Graceful shutdown: GOAWAY, finish open streams, then close. */
  goaway(): void {
    if (this.goawaySent || this.closing) return;
    this.goawaySent = true;
    this.write(goawayFrame(this.lastStreamId, ErrorCode.NO_ERROR));
    if (this.streams.size === 0) this.close();
  }

  /** Connection error: GOAWAY with the code, every stream cancelled, the socket closed. */
  private fail(code: number, message: string): void {
    if (this.closing) return;
    this.log.debug('HTTP/2 connection error', { code, error: message });
    this.goawaySent = true;
    this.write(goawayFrame(this.lastStreamId, code, message));
    this.cancelAll();
    this.close();
  }

  /** Writes what is pending and ends the socket. */
  private close(): void {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    this.socket.end(() => this.socket.destroy());
  }

  /** Cuts the connection now: open calls are cancelled. */
  destroy(): void {
    this.socket.destroy();
  }

  private cancelAll(): void {
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const stream of streams) {
      stream.closed = true;
      stream.localEnded = true;
      stream.handler.onReset(ErrorCode.CANCEL);
    }
  }

  private onSocketClose(): void {
    this.closing = true;
    this.closed = true;
    if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
    this.cancelAll();
    this.onClosed(this);
  }
}

/** The payload of a DATA or HEADERS frame without padding (and `skip` priority bytes). */
function unpad(flags: number, payload: Buffer, skip: number): Buffer {
  if ((flags & Flag.PADDED) === 0) return skip === 0 ? payload : checkedSlice(payload, skip, payload.length);
  if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without a pad length');
  const pad = payload[0] as number;
  // Padding as long as the payload or longer is a PROTOCOL_ERROR (§6.1, §6.2).
  if (pad >= payload.length - skip) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding exceeds the frame payload');
  return checkedSlice(payload, 1 + skip, payload.length - pad);
}

function checkedSlice(payload: Buffer, start: number, end: number): Buffer {
  if (start > end) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'frame too short for its fields');
  return payload.subarray(start, end);
}

/** HTTP/2 framing (RFC 7540 §4, §6): constants, frame headers, and a reader for a byte stream. */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** RFC 7540 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const FRAME_HEADER_LENGTH = 9;
export const DEFAULT_MAX_FRAME_SIZE = 16384;
export const MAX_ALLOWED_FRAME_SIZE = (1 << 24) - 1;
export const DEFAULT_WINDOW_SIZE = 65535;
export const MAX_WINDOW_SIZE = 0x7fffffff;

/** A connection error (§5.4.1): the connection ends with GOAWAY carrying `code`. */
export class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A stream error (§5.4.2): the stream ends with RST_STREAM carrying `code`. */
export class StreamError extends Error {
  constructor(
    readonly streamId: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Writes a frame header into `buf` at `offset`. */
export function writeFrameHeader(buf: Buffer, offset: number, length: number, type: number, flags: number, streamId: number): void {
  buf[offset] = length >>> 16;
  buf[offset + 1] = (length >>> 8) & 0xff;
  buf[offset + 2] = length & 0xff;
  buf[offset + 3] = type;
  buf[offset + 4] = flags;
  buf.writeUInt32BE(streamId, offset + 5);
}

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeFrameHeader(buf, 0, length, type, flags, streamId);
  return buf;
}

/** A whole frame with its payload copied in. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(buf, 0, payload.length, type, flags, streamId);
  buf.set(payload, FRAME_HEADER_LENGTH);
  return buf;
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + settings.length * 6);
  writeFrameHeader(buf, 0, settings.length * 6, FrameType.SETTINGS, 0, 0);
  settings.forEach(([id, value], i) => {
    buf.writeUInt16BE(id, FRAME_HEADER_LENGTH + i * 6);
    buf.writeUInt32BE(value, FRAME_HEADER_LENGTH + i * 6 + 2);
  });
  return buf;
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0, new Uint8Array(0));

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(buf, 0, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  buf.writeUInt32BE(increment, FRAME_HEADER_LENGTH);
  return buf;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(buf, 0, 4, FrameType.RST_STREAM, 0, streamId);
  buf.writeUInt32BE(code, FRAME_HEADER_LENGTH);
  return buf;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const debugBytes = Buffer.from(debug, 'utf8');
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8 + debugBytes.length);
  writeFrameHeader(buf, 0, 8 + debugBytes.length, FrameType.GOAWAY, 0, 0);
  buf.writeUInt32BE(lastStreamId, FRAME_HEADER_LENGTH);
  buf.writeUInt32BE(code, FRAME_HEADER_LENGTH + 4);
  debugBytes.copy(buf, FRAME_HEADER_LENGTH + 8);
  return buf;
}

export interface FrameSink {
  /** One complete frame; `payload` is valid until the sink returns unless the sink keeps it. */
  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void;
}

/**
 * Cuts a byte stream into frames. A frame split across reads is gathered in a list and joined
 * once, when its last byte arrives; frames inside one read are passed as views, not copies.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Length of the frame being gathered (header included), 0 until its header is complete. */
  private need = 0;

  /** @param maxFrameSize our SETTINGS_MAX_FRAME_SIZE: longer frames are a FRAME_SIZE_ERROR. */
  constructor(private readonly maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {}

  /** Feeds bytes; calls `sink` per frame while `proceed()` allows. Throws ConnectionError. */
  push(chunk: Buffer, sink: FrameSink, proceed: () => boolean): void {
    let buf = chunk;
    if (this.partsLength > 0) {
      const have = this.partsLength;
      if (this.need === 0) {
        // Fewer than nine bytes are held: the header is not complete yet.
        if (have + chunk.length < FRAME_HEADER_LENGTH) {
          this.hold(chunk);
          return;
        }
        this.need = this.frameLength(Buffer.concat([...this.parts, chunk.subarray(0, FRAME_HEADER_LENGTH - have)]));
      }
      if (have + chunk.length < this.need) {
        this.hold(chunk);
        return;
      }
      const taken = this.need - have;
      this.parts.push(chunk.subarray(0, taken));
      const whole = Buffer.concat(this.parts, this.need);
      this.parts = [];
      this.partsLength = 0;
      this.need = 0;
      this.dispatch(whole, 0, whole.length - FRAME_HEADER_LENGTH, sink);
      buf = chunk.subarray(taken);
    }
    let pos = 0;
    while (buf.length - pos >= FRAME_HEADER_LENGTH && proceed()) {
      const length = this.frameLength(buf, pos) - FRAME_HEADER_LENGTH;
      if (buf.length - pos - FRAME_HEADER_LENGTH < length) break;
      this.dispatch(buf, pos, length, sink);
      pos += FRAME_HEADER_LENGTH + length;
    }
    if (pos < buf.length && proceed()) {
      const rest = buf.subarray(pos);
      this.hold(rest);
      this.need = rest.length >= FRAME_HEADER_LENGTH ? this.frameLength(rest) : 0;
    }
  }

  private hold(chunk: Buffer): void {
    this.parts.push(chunk);
    this.partsLength += chunk.length;
  }

  private dispatch(buf: Buffer, pos: number, length: number, sink: FrameSink): void {
    const type = buf[pos + 3] as number;
    const flags = buf[pos + 4] as number;
    const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff; // the reserved bit is ignored (§4.1)
    const start = pos + FRAME_HEADER_LENGTH;
    sink.onFrame(type, flags, streamId, buf.subarray(start, start + length));
  }

  private frameLength(buf: Buffer, pos = 0): number {
    const length = ((buf[pos] as number) << 16) | ((buf[pos + 1] as number) << 8) | (buf[pos + 2] as number);
    if (length > this.maxFrameSize) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
    }
    return length + FRAME_HEADER_LENGTH;
  }
}

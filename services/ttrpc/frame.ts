/**
 * ttrpc framing: every message is a 10-byte header (uint32 BE payload length, uint32 BE stream
 * id, uint8 type, uint8 flags) followed by the protobuf payload.
 */
export const HEADER_SIZE = 10;
/** ttrpc's default message limit; both peers refuse anything larger. */
export const MAX_PAYLOAD = 4 << 20;

export const FrameType = { Request: 1, Response: 2 } as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
  /** Set when the peer announced a payload above MAX_PAYLOAD; its bytes were skipped. */
  oversized?: number;
}

export function encodeFrame(streamId: number, type: number, payload: Uint8Array, flags = 0): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`ttrpc message of ${payload.length} bytes exceeds the ${MAX_PAYLOAD}-byte limit`);
  }
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(streamId, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(flags, 9);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

interface PendingHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

/**
 * Reassembles frames from arbitrary stream chunks. Chunks are kept in a list and joined once per
 * frame, so a 4 MiB message arriving in 64 KiB pieces is copied once, not once per piece.
 * An oversized frame is skipped (not buffered) and reported, so the connection stays usable and
 * the stream can be answered with RESOURCE_EXHAUSTED, as ttrpc itself does.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: PendingHeader | undefined;
  private skipping = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, this.buffered);
        this.take(n);
        this.skipping -= n;
        if (this.skipping > 0) return frames;
      }
      if (!this.header) {
        if (this.buffered < HEADER_SIZE) return frames;
        const raw = this.take(HEADER_SIZE);
        const header = {
          length: raw.readUInt32BE(0),
          streamId: raw.readUInt32BE(4),
          type: raw.readUInt8(8),
          flags: raw.readUInt8(9),
        };
        if (header.length > MAX_PAYLOAD) {
          frames.push({ ...header, payload: Buffer.alloc(0), oversized: header.length });
          this.skipping = header.length;
          continue;
        }
        this.header = header;
      }
      if (this.buffered < this.header.length) return frames;
      const { streamId, type, flags, length } = this.header;
      frames.push({ streamId, type, flags, payload: this.take(length) });
      this.header = undefined;
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

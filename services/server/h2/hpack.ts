/**
 * HPACK (RFC 7541) for berthd's HTTP/2 server: a full decoder (static and dynamic tables, size
 * updates, eviction, Huffman) and an encoder that only needs what a gRPC server sends.
 *
 * Written here rather than taken from npm: the one HPACK package with real use, hpack.js, has had
 * no release since 2018 and decodes through streams and per-block buffer lists, which is the kind
 * of per-call overhead this server exists to remove. The codec is small and RFC 7541 Appendix C
 * pins it down completely (test/unit/server/hpack.test.ts runs those examples).
 *
 * Header names and values are latin1 strings: one char per octet, so string lengths are the octet
 * counts HPACK's table sizes are made of, and no UTF-8 decoding is paid on the hot path.
 */
import { huffmanDecode, HuffmanError } from './huffman.js';

/** RFC 7541 Appendix A, index 1..61 (index 0 unused). */
// prettier-ignore
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;

/** Per-entry overhead counted in table sizes (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

export class HpackError extends Error {}

/**
 * The decoding context of one connection. Its dynamic table is shared by every header block the
 * peer sends, so every block must be decoded, in order, even those of streams we refuse.
 */
export class HpackDecoder {
  // Newest entry last; HPACK index 62 is the newest.
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private size = 0;
  private maxSize: number;

  /** @param settingsMaxSize our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for. */
  constructor(private readonly settingsMaxSize = 4096) {
    this.maxSize = settingsMaxSize;
  }

  get tableSize(): number {
    return this.size;
  }

  get tableLength(): number {
    return this.names.length;
  }

  /** Entry `index` of the dynamic table, 1 = newest (for tests). */
  dynamicEntry(index: number): [string, string] | undefined {
    const i = this.names.length - index;
    return i >= 0 && i < this.names.length ? [this.names[i] as string, this.values[i] as string] : undefined;
  }

  /**
   * Decodes one complete header block into `out` as name, value, name, value... and returns the
   * decoded header list size (RFC 7540 §6.5.2: name + value + 32 per field).
   */
  decode(block: Uint8Array, out: string[]): number {
    this.buf = block;
    this.pos = 0;
    try {
      return this.decodeBlock(out);
    } finally {
      this.buf = EMPTY;
    }
  }

  private buf: Uint8Array = EMPTY;
  private pos = 0;

  private decodeBlock(out: string[]): number {
    const block = this.buf;
    const end = block.length;
    let listSize = 0;
    let fieldSeen = false;
    while (this.pos < end) {
      const b = block[this.pos] as number;
      if (b & 0x80) {
        // Indexed header field (§6.1).
        const i = this.lookup(this.int(7));
        const name = i < 0 ? (STATIC_TABLE[-i] as readonly [string, string])[0] : (this.names[i] as string);
        const value = i < 0 ? (STATIC_TABLE[-i] as readonly [string, string])[1] : (this.values[i] as string);
        out.push(name, value);
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        fieldSeen = true;
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = this.int(5);
        if (size > this.settingsMaxSize) throw new HpackError(`dynamic table size update to ${size} exceeds ${this.settingsMaxSize}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      }
      // Literal header field: with incremental indexing (01), without indexing (0000) or never
      // indexed (0001) (§6.2).
      const indexing = (b & 0xc0) === 0x40;
      const nameIndex = this.int(indexing ? 6 : 4);
      let name: string;
      if (nameIndex === 0) {
        name = this.str();
      } else {
        const i = this.lookup(nameIndex);
        name = i < 0 ? (STATIC_TABLE[-i] as readonly [string, string])[0] : (this.names[i] as string);
      }
      const value = this.str();
      out.push(name, value);
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      fieldSeen = true;
      if (indexing) this.add(name, value);
    }
    return listSize;
  }

  /** Prefixed integer (§5.1) with a `prefix`-bit prefix at the current position. */
  private int(prefix: number): number {
    const buf = this.buf;
    const mask = (1 << prefix) - 1;
    let value = (buf[this.pos++] as number) & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= buf.length) throw new HpackError('truncated integer');
      const b = buf[this.pos++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INT) throw new HpackError('integer overflow');
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  }

  /** String literal (§5.2) at the current position. */
  private str(): string {
    const buf = this.buf;
    if (this.pos >= buf.length) throw new HpackError('truncated string literal');
    const huffman = ((buf[this.pos] as number) & 0x80) !== 0;
    const length = this.int(7);
    const start = this.pos;
    const end = start + length;
    if (end > buf.length) throw new HpackError('string literal runs past the header block');
    this.pos = end;
    if (!huffman) return latin1(buf, start, end);
    try {
      return huffmanDecode(buf, start, end);
    } catch (e) {
      if (e instanceof HuffmanError) throw new HpackError(e.message);
      throw e;
    }
  }

  /** Negative: a static index (negated); otherwise an index into names/values. */
  private lookup(index: number): number {
    if (index === 0) throw new HpackError('header field index 0');
    if (index <= STATIC_COUNT) return -index;
    const i = this.names.length - (index - STATIC_COUNT);
    if (i < 0) throw new HpackError(`header field index ${index} is beyond the dynamic table`);
    return i;
  }

  private add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // An entry larger than the table empties it and is not added (§4.4).
    this.evict(entrySize);
    if (entrySize > this.maxSize) return;
    this.names.push(name);
    this.values.push(value);
    this.size += entrySize;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.names.length) {
      this.size -= (this.names[drop] as string).length + (this.values[drop] as string).length + ENTRY_OVERHEAD;
      drop++;
    }
    if (drop > 0) {
      this.names.splice(0, drop);
      this.values.splice(0, drop);
    }
  }
}

const EMPTY = new Uint8Array(0);

/** Largest integer accepted in a header block: far above any legitimate index, length or size. */
const MAX_INT = 0x7fffffff;

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.isBuffer(buf) ? buf.toString('latin1', start, end) : Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/** Appends the §5.1 encoding of `value` with a `prefix`-bit prefix and the given high bits. */
function encodeInt(out: number[], value: number, prefix: number, high: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(high | value);
    return;
  }
  out.push(high | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

const STATIC_EXACT = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (i === 0) return;
  STATIC_EXACT.set(`${name}\0${value}`, i);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i);
});

/**
 * Encodes a header list with static-table indices and literals without indexing, no Huffman:
 * stateless, so blocks can be precomputed and reused, and the peer's dynamic table is never
 * touched (no size updates to track). Values are latin1 (ASCII in practice).
 */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const exact = STATIC_EXACT.get(`${name}\0${value}`);
    if (exact !== undefined) {
      encodeInt(out, exact, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME.get(name);
    if (nameIndex !== undefined) {
      encodeInt(out, nameIndex, 4, 0x00);
    } else {
      out.push(0x00);
      pushString(out, name);
    }
    pushString(out, value);
  }
  return Buffer.from(out);
}

function pushString(out: number[], s: string): void {
  encodeInt(out, s.length, 7, 0x00);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

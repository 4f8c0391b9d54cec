import type { Extract } from 'tar-stream';

export const XATTR_PREFIX = 'SCHILY.xattr.';

// The slice of tar-stream 3's Extract internals used here (the version is pinned in package.json).
interface ExtractInternals {
  _header: { type: string } | null;
  _decodeLongHeader(buf: Buffer): void;
}

/**
 * tar-stream decodes PAX records into UTF-8 strings, which mangles binary xattr values such as
 * security.capability (and setting a mangled capability fails). This hooks the one extractor
 * instance to keep each entry's raw PAX header; the returned function hands it over (once) for
 * the entry being emitted. Null when the entry had none or tar-stream's internals changed.
 */
export function captureRawPax(extract: Extract): () => Buffer | null {
  const internals = extract as unknown as ExtractInternals;
  let raw: Buffer | null = null;
  if (typeof internals._decodeLongHeader === 'function') {
    const decode = internals._decodeLongHeader.bind(extract);
    internals._decodeLongHeader = (buf: Buffer): void => {
      if (internals._header?.type === 'pax-header') raw = Buffer.from(buf);
      decode(buf);
    };
  }
  return () => {
    const taken = raw;
    raw = null;
    return taken;
  };
}

/** The SCHILY.xattr records of a raw PAX header ("<len> <key>=<value>\n" each), values as bytes. */
export function paxXattrs(raw: Buffer): Array<[name: string, value: Buffer]> {
  const xattrs: Array<[string, Buffer]> = [];
  for (let off = 0; off < raw.length; ) {
    const space = raw.indexOf(0x20, off);
    const length = space < 0 ? NaN : Number(raw.toString('latin1', off, space));
    if (!Number.isInteger(length) || length <= space - off || off + length > raw.length) break;
    const record = raw.subarray(space + 1, off + length - 1);
    const eq = record.indexOf(0x3d);
    const key = eq < 0 ? '' : record.toString('utf8', 0, eq);
    if (key.startsWith(XATTR_PREFIX)) xattrs.push([key.slice(XATTR_PREFIX.length), Buffer.from(record.subarray(eq + 1))]);
    off += length;
  }
  return xattrs;
}


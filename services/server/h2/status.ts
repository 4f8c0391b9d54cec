/**
 * gRPC status on the wire (the gRPC HTTP/2 protocol spec): the response header and trailer blocks
 * (precomputed where they never change), grpc-message percent-encoding and grpc-timeout. The codes
 * are ttrpc's Code: the same gRPC numbers, already spelled out without loading grpc-js.
 */
import { Code } from '../../codes.js';
import { encodeHeaders } from './hpack.js';

/** A call ended by the transport (cancelled, deadline, limits): what pending sends reject with. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcStatusError';
  }
}

const CONTENT_TYPE: readonly [string, string] = ['content-type', 'application/grpc'];

/** `:status 200`, `content-type application/grpc`. */
export const RESPONSE_HEADERS = encodeHeaders([[':status', '200'], CONTENT_TYPE]);
export const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);
const OK_TRAILERS_ONLY = encodeHeaders([[':status', '200'], CONTENT_TYPE, ['grpc-status', '0']]);

/** Trailers ending a call that has sent its response headers. */
export function trailers(code: number, message: string): Buffer {
  if (code === Code.OK && message === '') return OK_TRAILERS;
  return encodeHeaders(statusFields(code, message));
}

/** A Trailers-Only response: the call fails (or ends empty) before any message. */
export function trailersOnly(code: number, message: string, httpStatus = 200): Buffer {
  if (code === Code.OK && message === '' && httpStatus === 200) return OK_TRAILERS_ONLY;
  return encodeHeaders([[':status', String(httpStatus)], CONTENT_TYPE, ...statusFields(code, message)]);
}

function statusFields(code: number, message: string): [string, string][] {
  const fields: [string, string][] = [['grpc-status', String(code)]];
  if (message !== '') fields.push(['grpc-message', percentEncode(message)]);
  return fields;
}

const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;

/**
 * grpc-message encoding: the UTF-8 bytes of the message, with every byte outside printable ASCII
 * and '%' itself written as %XX.
 */
export function percentEncode(message: string): string {
  if (PLAIN.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout as milliseconds; undefined if malformed. */
export function parseTimeout(value: string): number | undefined {
  const m = TIMEOUT.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/** Whether a content-type is gRPC's: application/grpc, optionally +format or ;params. */
export function isGrpcContentType(value: string): boolean {
  if (!value.startsWith('application/grpc')) return false;
  const next = value.charCodeAt(16);
  return value.length === 16 || next === 0x2b /* + */ || next === 0x3b /* ; */;
}

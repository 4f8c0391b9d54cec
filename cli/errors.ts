import { status } from '@grpc/grpc-js';

/** A failure the user can act on; its message is printed as is, on one line, and berth exits 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

interface GrpcLikeError {
  code: number;
  details: string;
}

function isGrpcError(err: unknown): err is GrpcLikeError {
  return err instanceof Error && typeof (err as Partial<GrpcLikeError>).code === 'number' && typeof (err as Partial<GrpcLikeError>).details === 'string';
}

export function hasCode(err: unknown, code: status): boolean {
  return isGrpcError(err) && err.code === code;
}

export const isNotFound = (err: unknown): boolean => hasCode(err, status.NOT_FOUND);
export const isAlreadyExists = (err: unknown): boolean => hasCode(err, status.ALREADY_EXISTS);

/** Runs `fn`; a NOT_FOUND answer becomes undefined, anything else is rethrown. */
export async function unlessNotFound<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ').trim();
}

/**
 * The single line printed for any failure. gRPC errors show the daemon's own message (containerd
 * convention: "<thing> <id>: not found"); an unreachable daemon says where we looked and how to
 * point elsewhere, since that is by far the most common first error.
 */
export function describeError(err: unknown, address: string): string {
  if (isGrpcError(err)) {
    // grpc-js's own wording when the socket cannot be reached; an UNAVAILABLE from berthd (a
    // registry it cannot reach) has the daemon's message instead.
    if (err.code === status.UNAVAILABLE && err.details.startsWith('No connection established')) {
      const reason = /connect (\w+)/.exec(err.details)?.[1] ?? 'unreachable';
      return `cannot connect to berthd at ${address} (${reason}); is it running? Use --address or BERTH_ADDRESS to point elsewhere`;
    }
    if (err.code === status.UNIMPLEMENTED) return `berthd does not support this (${oneLine(err.details) || 'unimplemented'})`;
    return oneLine(err.details) || `gRPC error ${status[err.code] ?? err.code}`;
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    // Node's system errors already name the path ("ENOENT: no such file or directory, open 'x'").
    return oneLine(code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message);
  }
  return oneLine(String(err));
}

import { Code } from './codes.js';

/**
 * The closed set of failure classes Berth reports. Each maps to one gRPC status code, because
 * containerd clients branch on the code (AlreadyExists on Content.Write means "skip this blob",
 * Unavailable means "retry"), never on the message.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL';

const GRPC_CODES: Record<ErrorCode, number> = {
  NOT_FOUND: Code.NOT_FOUND,
  ALREADY_EXISTS: Code.ALREADY_EXISTS,
  INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
  FAILED_PRECONDITION: Code.FAILED_PRECONDITION,
  UNAVAILABLE: Code.UNAVAILABLE,
  UNAUTHENTICATED: Code.UNAUTHENTICATED,
  OUT_OF_RANGE: Code.OUT_OF_RANGE,
  UNIMPLEMENTED: Code.UNIMPLEMENTED,
  CANCELLED: Code.CANCELLED,
  DEADLINE_EXCEEDED: Code.DEADLINE_EXCEEDED,
  INTERNAL: Code.INTERNAL,
};

export class BerthError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BerthError';
  }

  get grpcCode(): number {
    return GRPC_CODES[this.code];
  }
}

export const notFound = (what: string): BerthError => new BerthError('NOT_FOUND', `${what}: not found`);
export const alreadyExists = (what: string): BerthError =>
  new BerthError('ALREADY_EXISTS', `${what}: already exists`);
export const invalidArgument = (message: string): BerthError => new BerthError('INVALID_ARGUMENT', message);
export const failedPrecondition = (message: string): BerthError =>
  new BerthError('FAILED_PRECONDITION', message);
export const unavailable = (message: string): BerthError => new BerthError('UNAVAILABLE', message);

export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code);
}

/** Any thrown value as a BerthError: unexpected failures become INTERNAL with their message. */
export function toBerthError(err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BerthError('INTERNAL', message);
}

const FROM_GRPC = new Map<number, ErrorCode>(Object.entries(GRPC_CODES).map(([code, grpc]) => [grpc, code as ErrorCode]));

/** A status received from a peer (a shim over ttrpc) as our own error, keeping its class. */
export function fromGrpcStatus(code: number, message: string): BerthError {
  return new BerthError(FROM_GRPC.get(code) ?? 'INTERNAL', message);
}

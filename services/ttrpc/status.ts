/**
 * gRPC status codes as ttrpc carries them in google.rpc.Status. Spelled out here instead of
 * imported from @grpc/grpc-js so the shim, which never speaks gRPC, does not load that library.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export type CodeValue = (typeof Code)[keyof typeof Code];

export interface RpcStatus {
  code: number;
  message: string;
}

/**
 * A failed ttrpc call, or a handler's way to choose the status it returns. `grpcCode` has the same
 * name as BerthError's, so code that maps errors to statuses treats both alike.
 */
export class TtrpcError extends Error {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'TtrpcError';
  }
}

function hasGrpcCode(err: unknown): err is Error & { grpcCode: number } {
  return err instanceof Error && typeof (err as { grpcCode?: unknown }).grpcCode === 'number';
}

/**
 * The status a thrown value becomes: TtrpcError and BerthError (services/errors.ts) keep their
 * code; anything else is UNKNOWN, as in ttrpc's Go server. Duck-typed on `grpcCode` so importing
 * errors.ts (and grpc-js with it) is not needed here.
 */
export function statusOf(err: unknown): RpcStatus {
  if (hasGrpcCode(err)) return { code: err.grpcCode, message: err.message };
  return { code: Code.UNKNOWN, message: err instanceof Error ? err.message : String(err) };
}

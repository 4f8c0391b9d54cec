import { Code } from '../codes.js';

export { Code };

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

import { failedPrecondition } from '../errors.js';
import { validateLeaseId, validateNamespace } from '../validate.js';
import type { CallMetadata } from './h2/call.js';

/** What a call carries besides its message: containerd's namespace and lease headers. */
export interface CallContext {
  readonly namespace: string | undefined;
  readonly lease: string | undefined;
  readonly signal: AbortSignal;
}

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

function mapHeader(metadata: CallMetadata, key: string): string | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

/** The namespace last found valid: nearly every call of a client carries the same one. */
let validNamespace = '';

function checkNamespace(namespace: string): string {
  if (namespace !== validNamespace) validNamespace = validateNamespace(namespace);
  return namespace;
}

/** What the context is read from: the h2 server's GrpcCall. */
interface CallSource {
  readonly metadata: CallMetadata;
  /** Made on first use (an AbortController per call costs): read through, not copied. */
  readonly signal: AbortSignal;
}

/**
 * The context of a call. Malformed headers are refused up front; a missing namespace only where a
 * service needs one.
 */
export function callContext(call: CallSource): CallContext {
  const namespace = mapHeader(call.metadata, NAMESPACE_HEADER);
  const lease = mapHeader(call.metadata, LEASE_HEADER);
  return {
    namespace: namespace === undefined ? undefined : checkNamespace(namespace),
    lease: lease ? validateLeaseId(lease) : undefined,
    get signal() {
      return call.signal;
    },
  };
}

export function requireNamespace(ctx: CallContext): string {
  if (!ctx.namespace) {
    throw failedPrecondition(`namespace is required: set the "${NAMESPACE_HEADER}" metadata (ctr -n NAME)`);
  }
  return ctx.namespace;
}

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

/**
 * Malformed headers are refused up front; a missing namespace only where a service needs one.
 * The signal is made on first use (see handlers.ts).
 */
function makeContext(namespace: string | undefined, lease: string | undefined, signal: () => AbortSignal): CallContext {
  return {
    namespace: namespace === undefined ? undefined : checkNamespace(namespace),
    lease: lease ? validateLeaseId(lease) : undefined,
    get signal() {
      return signal();
    },
  };
}

/** The context of a call. */
export function contextFromCallMetadata(metadata: CallMetadata, signal: () => AbortSignal): CallContext {
  return makeContext(mapHeader(metadata, NAMESPACE_HEADER), mapHeader(metadata, LEASE_HEADER), signal);
}

export function requireNamespace(ctx: CallContext): string {
  if (!ctx.namespace) {
    throw failedPrecondition(`namespace is required: set the "${NAMESPACE_HEADER}" metadata (ctr -n NAME)`);
  }
  return ctx.namespace;
}

import type { RegistryClient } from '../../registry/client.js';
import type { Reference } from '../../registry/reference.js';
import type { ProgressListener } from './types.js';

/** What every step of one pull shares. */
export interface PullContext {
  namespace: string;
  lease: string;
  ref: Reference;
  client: RegistryClient;
  progress: ProgressListener;
  signal: AbortSignal;
}

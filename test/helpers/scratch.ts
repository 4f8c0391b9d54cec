import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';

/**
 * A new private dir below global setup's per-run dir (falling back to /tmp outside a vitest
 * run), so global teardown removes whatever a crashed test leaves behind.
 */
export function scratchDir(prefix: string): Promise<string> {
  let parent = '/tmp';
  try {
    parent = inject('berthRunDir');
  } catch {
    // Not inside a vitest worker.
  }
  return mkdtemp(join(parent, prefix));
}

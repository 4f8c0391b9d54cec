import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

/** The shims berthd can drive: ours, and containerd's runc shim through the same v2 contract. */
export const SHIMS = [
  ['berth-shim', fileURLToPath(new URL('../../bin/berth-shim', import.meta.url))],
  ['containerd-shim-runc-v2', '/usr/bin/containerd-shim-runc-v2'],
] as const;

/**
 * A berthd config file selecting `shim`, for useBerthd({ args: ['--config', file] }). It lives
 * under global setup's per-run dir, which teardown removes.
 */
export function configWithShim(shim: string): string {
  let parent = tmpdir();
  try {
    parent = inject('berthRunDir');
  } catch {
    // Not inside a vitest worker.
  }
  const file = join(mkdtempSync(join(parent, 'berth-cfg-')), 'berthd.toml');
  writeFileSync(file, `[runtime]\nshim = "${shim}"\n`);
  return file;
}

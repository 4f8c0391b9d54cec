// berthd's launcher (services/daemon/launch.ts) runs the bundle from V8's code cache: a cache V8
// refuses must not stop berthd, and one is written after a start that had none usable.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBerthd } from '../../helpers/berthd.js';
import { runOk } from '../../helpers/exec.js';

// The launcher writes the cache this long after a start (CACHE_AFTER_MS), plus slack.
const WRITE_WAIT_MS = 2500;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-code-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('code cache', () => {
  it('starts despite a cache V8 refuses, replaces it, and starts again from the new one', async () => {
    const cache = join(dir, 'berthd.cache');
    const garbage = Buffer.alloc(4096, 7);
    await writeFile(cache, garbage);
    const env = { ...process.env, BERTHD_CODE_CACHE: cache };

    const first = await startBerthd({ env });
    try {
      expect((await runOk('ctr', ['--address', first.address, 'version'])).stdout).toContain('Server:');
      await new Promise((resolve) => setTimeout(resolve, WRITE_WAIT_MS));
    } finally {
      await first.stop();
    }
    const written = await readFile(cache);
    expect(written.equals(garbage)).toBe(false);
    // Compiled code for a ~1.3 MB bundle: far more than a header.
    expect(written.length).toBeGreaterThan(100_000);

    const second = await startBerthd({ env });
    try {
      expect((await runOk('ctr', ['--address', second.address, 'version'])).stdout).toContain('Server:');
    } finally {
      await second.stop();
    }
  }, 30_000);
});

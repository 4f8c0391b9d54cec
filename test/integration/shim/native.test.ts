import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processNative as native } from '../../../services/native/addon.js';

function exitCode(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Spawns a shell that leaves an orphan running `script` (adopted by us, the subreaper); its pid. */
async function orphan(script: string): Promise<number> {
  const parent = spawn('sh', ['-c', `sh -c '${script}' & echo $!`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  parent.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  await exitCode(parent);
  return Number(out.trim());
}

describe('process supervision addon', () => {
  it('tracks a child through its pidfd and reports exit code and signal', async () => {
    native.setChildSubreaper();
    for (const [script, expected] of [
      ['sleep 0.2; exit 3', { status: 3, signal: 0 }],
      ['sleep 0.2; kill -9 $$', { status: 137, signal: 9 }],
    ] as const) {
      const pid = await orphan(script);
      const pidfd = native.pidfdOpen(pid);
      expect(native.waitidPidfd(pidfd)).toBeNull();
      await new Promise<void>((resolve) => new native.FdWatch(pidfd, () => resolve()));
      expect(native.waitidPidfd(pidfd)).toEqual({ pid, ...expected });
      closeSync(pidfd);
    }
  });

  it('reaps adopted orphans but leaves libuv children to libuv', async () => {
    native.setChildSubreaper();
    const libuvChild = spawn('sh', ['-c', 'sleep 0.3; exit 6']);
    const libuvExit = exitCode(libuvChild);
    const adopted = await orphan('sleep 0.2; exit 9');
    // Collect until the orphan has exited; the libuv child is excluded every time.
    const reaped = [];
    while (reaped.length === 0) {
      reaped.push(...native.reapOrphans([libuvChild.pid!]));
      if (reaped.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(reaped).toEqual([{ pid: adopted, status: 9, signal: 0 }]);
    expect(await libuvExit).toBe(6);
  });

  it('returns null from waitPid while the process runs', () => {
    const child = spawn('sleep', ['100']);
    try {
      expect(native.waitPid(child.pid!)).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });
});

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { useBerthd } from '../../helpers/berthd.js';
import { ctr } from '../../helpers/ctr.js';
import { apiClient } from '../../helpers/grpc.js';
import { fixtureImage } from '../../helpers/registry.js';
import { storeProblems } from './consistency.js';

const CONTENT = 'containerd.services.content.v1.Content';
const MiB = 1 << 20;

/** Polls until check() is true or the time is up; returns whether it became true. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(10);
  }
  return false;
}

/** kill -9 at awkward moments: the store stays consistent and the work can be finished. */
describe('berthd after kill -9', () => {
  const daemon = useBerthd();

  it('mid Content.Write: no partial blob is visible and the ingest resumes', async () => {
    const blob = randomBytes(3 * MiB);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const ref = 'crash-ingest';
    let api = apiClient(daemon().address);
    const w = api.bidi(`${CONTENT}/Write`);
    w.write({ action: 'WRITE', ref, total: blob.length, expected: digest, data: blob.subarray(0, MiB) });
    expect((await w.read()).offset).toBe(MiB);
    await daemon().kill9();
    api.close();
    await daemon().restart();
    expect(storeProblems(daemon().root)).toEqual([]);

    api = apiClient(daemon().address);
    try {
      const info = await api.unary(`${CONTENT}/Info`, { digest }).catch((e: { code: number }) => e);
      expect((info as { code: number }).code).toBe(status.NOT_FOUND);
      const st = (await api.unary(`${CONTENT}/Status`, { ref })).status as { offset: number; total: number };
      expect(st).toMatchObject({ offset: MiB, total: blob.length });
      const resume = api.bidi(`${CONTENT}/Write`);
      resume.write({ ref });
      expect((await resume.read()).offset).toBe(MiB);
      resume.write({ action: 'WRITE', ref, offset: MiB, data: blob.subarray(MiB) });
      await resume.read();
      resume.write({ action: 'COMMIT', ref, total: blob.length, expected: digest });
      expect((await resume.read()).digest).toBe(digest);
      await resume.end();
      expect(((await api.unary(`${CONTENT}/Info`, { digest })).info as { size: number }).size).toBe(blob.length);
    } finally {
      api.close();
    }
  });

  it('mid Diff.Apply: orphan snapshots are cleaned up and the same pull completes', async () => {
    const ns = 'crash-apply';
    const ref = fixtureImage('multi').ref;
    const pull = spawn('/usr/bin/ctr', ['--address', daemon().address, '-n', ns, 'images', 'pull', '--plain-http', ref], { stdio: 'ignore' });
    const pullDone = new Promise<void>((resolve) => pull.once('exit', () => resolve()));
    const extracting = await until(async () => (await ctr(daemon().address, ['snapshots', 'ls'], { namespace: ns })).stdout.includes('extract-'), 30_000);
    expect(extracting).toBe(true);
    await daemon().kill9();
    await pullDone;
    await daemon().restart();
    expect(storeProblems(daemon().root)).toEqual([]);

    const again = await ctr(daemon().address, ['images', 'pull', '--plain-http', ref], { namespace: ns });
    expect(again.code, again.stderr).toBe(0);
    const check = await ctr(daemon().address, ['images', 'check'], { namespace: ns });
    expect(check.stdout).toMatch(/complete \((\d+)\/\1\)/);
    expect(storeProblems(daemon().root)).toEqual([]);
  });

  it('mid garbage collection: rows and files agree after restart', async () => {
    const ns = 'crash-gc';
    const ref = fixtureImage('multi').ref;
    expect((await ctr(daemon().address, ['images', 'pull', '--plain-http', ref], { namespace: ns })).code).toBe(0);
    expect((await ctr(daemon().address, ['images', 'rm', ref], { namespace: ns })).code).toBe(0);
    await daemon().kill9();
    await daemon().restart();
    expect(storeProblems(daemon().root)).toEqual([]);
    expect((await ctr(daemon().address, ['content', 'ls', '-q'], { namespace: ns })).stdout).toBe('');
    const again = await ctr(daemon().address, ['images', 'pull', '--plain-http', ref], { namespace: ns });
    expect(again.code, again.stderr).toBe(0);
  });
});

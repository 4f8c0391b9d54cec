import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useBerthd } from '../helpers/berthd.js';
import { ctr } from '../helpers/ctr.js';
import { fixtureImage } from '../helpers/registry.js';

/** `ctr events` streams what berthd publishes, here an image's create and delete. */
describe('ctr events against berthd', () => {
  const daemon = useBerthd();

  it('shows image create and delete events', async () => {
    const events = spawn('/usr/bin/ctr', ['--address', daemon().address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    events.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<void>((resolve) => events.once('exit', () => resolve()));
    try {
      // Subscribe is asynchronous: a namespace event proves the stream is live before the pull.
      const deadline = Date.now() + 10_000;
      while (!out.includes('/namespaces/create') && Date.now() < deadline) {
        await ctr(daemon().address, ['namespaces', 'create', `probe${Date.now()}`]);
        await sleep(50);
      }
      const ref = fixtureImage('busybox').ref;
      expect((await ctr(daemon().address, ['images', 'pull', '--plain-http', ref], { namespace: 'ev' })).code).toBe(0);
      expect((await ctr(daemon().address, ['images', 'rm', ref], { namespace: 'ev' })).code).toBe(0);
      while (!out.includes('/images/delete') && Date.now() < deadline + 10_000) await sleep(50);
    } finally {
      events.kill('SIGTERM');
      await exited;
    }
    const lines = out.split('\n');
    const create = lines.find((l) => l.includes('/images/create'));
    const del = lines.find((l) => l.includes('/images/delete'));
    expect(create).toMatch(/\bev\s+\/images\/create\s+.*127\.0\.0\.1/);
    expect(del).toMatch(/\bev\s+\/images\/delete\s+.*busybox/);
    expect(lines.some((l) => /\/snapshot\/prepare/.test(l))).toBe(true);
    expect(lines.some((l) => /\/snapshot\/commit/.test(l))).toBe(true);
  });
});

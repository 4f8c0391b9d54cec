import { describe, expect, it } from 'vitest';
import { useBerthd } from '../helpers/berthd.js';
import { ctr } from '../helpers/ctr.js';
import { watchEvents } from '../helpers/events.js';
import { fixtureImage } from '../helpers/registry.js';

/** `ctr events` streams what berthd publishes, here an image's create and delete. */
describe('ctr events against berthd', () => {
  const daemon = useBerthd();

  it('shows image create and delete events', async () => {
    const events = await watchEvents(daemon().address);
    try {
      const ref = fixtureImage('busybox').ref;
      expect((await ctr(daemon().address, ['images', 'pull', '--plain-http', ref], { namespace: 'ev' })).code).toBe(0);
      expect((await ctr(daemon().address, ['images', 'rm', ref], { namespace: 'ev' })).code).toBe(0);
      await events.waitFor('/images/delete');
    } finally {
      await events.stop();
    }
    const lines = events.output().split('\n');
    expect(lines.find((l) => l.includes('/images/create'))).toMatch(/\bev\s+\/images\/create\s+.*127\.0\.0\.1/);
    expect(lines.find((l) => l.includes('/images/delete'))).toMatch(/\bev\s+\/images\/delete\s+.*busybox/);
    expect(lines.some((l) => l.includes('/snapshot/prepare'))).toBe(true);
    expect(lines.some((l) => l.includes('/snapshot/commit'))).toBe(true);
  });
});

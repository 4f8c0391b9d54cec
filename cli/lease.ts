import { randomBytes } from 'node:crypto';
import type { Api } from './client.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Runs `fn` under a fresh lease, as ctr's WithLease does: what it writes (snapshots, content) is
 * safe from garbage collection until it is referenced by a container or an image, and the lease
 * expires by itself after a day should this process die before deleting it.
 */
export async function withLease<T>(api: Api, fn: (lease: string) => Promise<T>): Promise<T> {
  const id = `berth-${process.hrtime.bigint()}-${randomBytes(2).toString('hex')}`;
  const expire = new Date(Date.now() + DAY_MS).toISOString().replace(/\.\d+Z$/, 'Z');
  await api.unary('leases', 'Create', { id, labels: { 'containerd.io/gc.expire': expire } });
  try {
    return await fn(id);
  } finally {
    await api.unary('leases', 'Delete', { id }).catch(() => undefined);
  }
}

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { openServices, type Services } from '../../../services/daemon/daemon.js';
import { BerthError, type ErrorCode } from '../../../services/errors.js';
import type { Envelope } from '../../../services/events/exchange.js';
import { silentLogger } from '../../../services/log.js';
import type { MountSpec } from '../../../services/snapshots/types.js';

/** A fresh daemon root with every in-process service opened on it. */
export interface TestRoot {
  root: string;
  services: Services;
  /**
   * Closes the services and opens new ones on the same root, as a daemon restart does. Nothing is
   * collected on the way: call it with no collection in flight (no delete just before).
   */
  reopen(): Promise<Services>;
  /** Closes the metadata db and removes the root. */
  dispose(): Promise<void>;
}

export async function makeTempDir(prefix = 'berth-svc-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function openTestRoot(): Promise<TestRoot> {
  const root = await makeTempDir();
  const close = async (services: Services): Promise<void> => {
    // A collection scheduled by a delete may still be running, and removed snapshots may still be
    // being emptied for reuse: let both finish before closing, as berthd's stop does.
    await services.gc.schedule(true);
    await services.snapshots.removalsDone();
    if (services.meta.db.open) services.meta.close();
  };
  const t: TestRoot = {
    root,
    services: await openServices(root, silentLogger),
    reopen: async () => {
      await t.services.snapshots.removalsDone();
      t.services.meta.close();
      t.services = await openServices(root, silentLogger);
      return t.services;
    },
    dispose: async () => {
      await close(t.services);
      await rm(root, { recursive: true, force: true });
    },
  };
  return t;
}

/** The BerthError fn throws (synchronously or by rejecting), checked for its code and message. */
export async function expectBerthError(
  fn: () => unknown,
  code: ErrorCode,
  message?: RegExp | string,
): Promise<BerthError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a BerthError').toBeInstanceOf(BerthError);
  const err = thrown as BerthError;
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

/** Collects events from an exchange subscription until stop() is called. */
export interface Recorder {
  readonly events: Envelope[];
  topics(): string[];
  stop(): Promise<Envelope[]>;
}

export function recordEvents(services: Services, filters: string[] = []): Recorder {
  const controller = new AbortController();
  const events: Envelope[] = [];
  const iterator = services.exchange.subscribe(filters, controller.signal);
  // The first next() runs the generator up to its first wait, which registers the subscriber.
  const done = (async () => {
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) events.push(r.value);
  })();
  return {
    events,
    topics: () => events.map((e) => `${e.namespace} ${e.topic}`),
    stop: async () => {
      // Let already-queued envelopes drain before aborting.
      await new Promise<void>((resolve) => setImmediate(resolve));
      controller.abort();
      await done;
      return events;
    },
  };
}

export const sha256Of = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Writes data through a content writer and commits it; returns the digest. */
export async function writeBlob(
  services: Services,
  namespace: string,
  data: Buffer | string,
  options: { ref?: string; lease?: string; labels?: Record<string, string> } = {},
): Promise<string> {
  const bytes = Buffer.from(data);
  const digest = sha256Of(bytes);
  const writer = await services.content.writer(namespace, options.ref ?? `ref-${digest}`, bytes.length, digest, options.lease);
  try {
    await writer.ingest.write(0, bytes);
    return await writer.commit(bytes.length, digest, options.labels ?? {});
  } finally {
    await writer.release();
  }
}

export const descriptor = (digest: string, size = 1, mediaType = 'application/vnd.oci.image.manifest.v1+json') => ({
  mediaType,
  digest,
  size,
  annotations: {},
});

/** The snapshot directory (`<root>/snapshots/overlayfs/<id>`) behind mounts that prepare or view returned. */
export function snapshotDirOf(mounts: readonly MountSpec[]): string {
  const m = mounts[0];
  if (!m) throw new Error('no mounts');
  if (m.type === 'bind') return m.source.replace(/\/fs$/, '');
  const upper = m.options.find((o) => o.startsWith('upperdir='));
  if (!upper) throw new Error(`no upperdir in ${JSON.stringify(m)}`);
  return upper.slice('upperdir='.length).replace(/\/fs$/, '');
}

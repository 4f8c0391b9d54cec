import { createHash } from 'node:crypto';
import { existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EXPIRE_LABEL } from '../../../services/leases/service.js';
import { descriptor, expectBerthError, openTestRoot, recordEvents, sha256Of, snapshotDirOf, writeBlob, type TestRoot } from './harness.js';

let t: TestRoot;
const NS = 'default';

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

const blobFile = (digest: string): string => join(t.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
const hasContent = (digest: string, ns = NS): boolean => t.services.content.has(ns, digest);
const snapshotNames = (ns = NS): string[] => t.services.snapshots.list(ns).map((s) => s.name);

/** Prepares and commits a layer snapshot; returns its directory. */
function commitLayer(name: string, parent = '', lease?: string): string {
  const mounts = t.services.snapshots.prepare(NS, `extract-${name}`, parent, {}, lease);
  t.services.snapshots.commit(NS, name, `extract-${name}`, {}, lease);
  return snapshotDirOf(mounts);
}

/** A manifest pointing at a config and a layer through gc.ref labels, as ctr's pull leaves it. */
async function pulledImage(name: string, configLabels: Record<string, string> = {}) {
  const layer = await writeBlob(t.services, NS, `layer of ${name}`);
  const config = await writeBlob(t.services, NS, `config of ${name}`, { labels: configLabels });
  const manifest = await writeBlob(t.services, NS, `manifest of ${name}`, {
    labels: { 'containerd.io/gc.ref.content.config': config, 'containerd.io/gc.ref.content.l.0': layer },
  });
  t.services.images.create(NS, { name, labels: {}, target: descriptor(manifest) });
  return { manifest, config, layer };
}

describe('GarbageCollector content', () => {
  it('keeps an image target and what its gc.ref.content labels reach; removes unreferenced rows and blobs', async () => {
    const kept = await pulledImage('busybox:latest');
    const stray = await writeBlob(t.services, NS, 'nobody points here');
    const rec = recordEvents(t.services, ['topic=="/content/delete"']);
    const result = await t.services.gc.collect();
    await rec.stop();
    expect(result).toMatchObject({ content: 1, blobs: 1, snapshots: 0, leases: 0 });
    for (const digest of Object.values(kept)) {
      expect(hasContent(digest)).toBe(true);
      expect(existsSync(blobFile(digest))).toBe(true);
    }
    expect(hasContent(stray)).toBe(false);
    expect(existsSync(blobFile(stray))).toBe(false);
    expect(rec.events.map((e) => e.namespace)).toEqual([NS]);
  });

  it('follows gc.ref.content labels transitively and keeps gc.root content', async () => {
    const leaf = await writeBlob(t.services, NS, 'leaf');
    const middle = await writeBlob(t.services, NS, 'middle', { labels: { 'containerd.io/gc.ref.content.m.0': leaf } });
    const index = await writeBlob(t.services, NS, 'index', { labels: { 'containerd.io/gc.ref.content.m.0': middle } });
    t.services.images.create(NS, { name: 'multi:1', labels: {}, target: descriptor(index) });
    const rooted = await writeBlob(t.services, NS, 'rooted', { labels: { 'containerd.io/gc.root': '' } });
    await t.services.gc.collect();
    expect([leaf, middle, index, rooted].map((d) => hasContent(d))).toEqual([true, true, true, true]);
  });

  it('follows gc.ref labels on images too, as containerd does', async () => {
    const extra = await writeBlob(t.services, NS, 'attached to the image by label');
    commitLayer('image-snapshot');
    const manifest = await writeBlob(t.services, NS, 'manifest');
    t.services.images.create(NS, {
      name: 'labelled:1',
      labels: { 'containerd.io/gc.ref.content.sig': extra, 'containerd.io/gc.ref.snapshot.overlayfs': 'image-snapshot' },
      target: descriptor(manifest),
    });
    const result = await t.services.gc.collect();
    expect(result).toMatchObject({ content: 0, snapshots: 0 });
    expect(hasContent(extra)).toBe(true);
    expect(snapshotNames()).toEqual(['image-snapshot']);
  });

  it('a gc.root label keeps a snapshot', async () => {
    commitLayer('rooted');
    t.services.snapshots.update(NS, 'rooted', { 'containerd.io/gc.root': 'true' }, ['labels.containerd.io/gc.root']);
    commitLayer('loose');
    await t.services.gc.collect();
    expect(snapshotNames()).toEqual(['rooted']);
  });

  it('removes a namespace row but keeps the blob file another namespace still records', async () => {
    const digest = await writeBlob(t.services, 'keeper', 'shared');
    t.services.images.create('keeper', { name: 'x:1', labels: {}, target: descriptor(digest) });
    await writeBlob(t.services, 'dropper', 'shared');
    const result = await t.services.gc.collect();
    expect(result).toMatchObject({ content: 1, blobs: 0 });
    expect(hasContent(digest, 'dropper')).toBe(false);
    expect(hasContent(digest, 'keeper')).toBe(true);
    expect(existsSync(blobFile(digest))).toBe(true);
  });

  it('removes a blob file that has no row (an orphan)', async () => {
    const orphan = sha256Of('orphan bytes');
    writeFileSync(blobFile(orphan), 'orphan bytes');
    const result = await t.services.gc.collect();
    expect(result.blobs).toBe(1);
    expect(existsSync(blobFile(orphan))).toBe(false);
  });

  it('lists blob files after a collection removes content or a content delete, not after other deletes', async () => {
    await t.services.gc.collect(); // the start-up pass, which also starts the hourly clock
    const listings = vi.spyOn(t.services.content.blobs, 'listBlobs');
    commitLayer('kept-by-nothing');
    await t.services.gc.schedule(true); // a snapshot goes; no content row does
    expect(listings).not.toHaveBeenCalled();
    const { config } = await pulledImage('img');
    await t.services.content.delete(NS, config);
    await t.services.gc.schedule(true);
    expect(listings).toHaveBeenCalled();
    listings.mockClear();
    await t.services.images.delete(NS, 'img', true); // the collector removes the manifest's rows
    expect(listings).toHaveBeenCalled();
  });

  it('skips files under blobs/ whose names are not digests instead of failing the collection', async () => {
    const stray = join(t.root, 'content', 'blobs', 'sha256', 'not-a-digest.tmp');
    writeFileSync(stray, 'junk');
    const orphan = sha256Of('orphan');
    writeFileSync(blobFile(orphan), 'orphan');
    const result = await t.services.gc.collect();
    expect(result.blobs).toBe(1);
    expect(existsSync(blobFile(orphan))).toBe(false);
    expect(existsSync(stray)).toBe(true);
  });

  it('keeps the file of a blob recorded while the blob sweep is running', async () => {
    // A pull-style writer: the blob is in place and marked as committing; its row comes later.
    const data = 'committed during the sweep';
    const fresh = sha256Of(data);
    writeFileSync(blobFile(fresh), data);
    const done = t.services.content.blobs.beginCommit(fresh);
    const orphans = Array.from({ length: 50 }, (_, i) => `orphan ${i}`);
    for (const o of orphans) writeFileSync(blobFile(sha256Of(o)), o);

    let settled = false;
    const collecting = t.services.gc.collect().finally(() => (settled = true));
    // Wait until the sweep has removed its first orphan, i.e. it is past its listing and db read.
    while (!settled && orphans.every((o) => existsSync(blobFile(sha256Of(o))))) await new Promise((r) => setImmediate(r));
    t.services.content.record(NS, fresh, data.length, { 'containerd.io/gc.root': 'true' });
    done();
    await collecting;

    expect(hasContent(fresh)).toBe(true);
    expect(existsSync(blobFile(fresh))).toBe(true);
    expect(orphans.some((o) => existsSync(blobFile(sha256Of(o))))).toBe(false);
  });

  it('images.delete(ns, name, true) returns after the collection removed the image content', async () => {
    const { manifest, config, layer } = await pulledImage('busybox:latest');
    await t.services.images.delete(NS, 'busybox:latest', true);
    for (const digest of [manifest, config, layer]) {
      expect(hasContent(digest)).toBe(false);
      expect(existsSync(blobFile(digest))).toBe(false);
    }
  });

  it('keeps the content of an image that remains when another is deleted', async () => {
    const a = await pulledImage('a:1');
    t.services.images.create(NS, { name: 'alias:1', labels: {}, target: descriptor(a.manifest) });
    await t.services.images.delete(NS, 'a:1', true);
    expect([a.manifest, a.config, a.layer].every((d) => hasContent(d))).toBe(true);
  });
});

describe('GarbageCollector snapshots', () => {
  it('a gc.ref.snapshot.overlayfs label keeps a snapshot and its parents; others go with their directories', async () => {
    const base = commitLayer('chain-base');
    const top = commitLayer('chain-top', 'chain-base');
    const stray = commitLayer('stray');
    const active = snapshotDirOf(t.services.snapshots.prepare(NS, 'unreferenced-active', 'chain-top', {}));
    await pulledImage('img:1', { 'containerd.io/gc.ref.snapshot.overlayfs': 'chain-top' });
    const result = await t.services.gc.collect();
    expect(result.snapshots).toBe(2);
    expect(snapshotNames()).toEqual(['chain-base', 'chain-top']);
    expect(existsSync(base)).toBe(true);
    expect(existsSync(top)).toBe(true);
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(active)).toBe(false);
  });

  it('collects the whole chain once the image referencing it is deleted', async () => {
    const base = commitLayer('base');
    commitLayer('top', 'base');
    await pulledImage('img:1', { 'containerd.io/gc.ref.snapshot.overlayfs': 'top' });
    await t.services.gc.collect();
    expect(snapshotNames()).toEqual(['base', 'top']);
    await t.services.images.delete(NS, 'img:1', true);
    expect(snapshotNames()).toEqual([]);
    expect(existsSync(base)).toBe(false);
  });
});

describe('GarbageCollector containers', () => {
  it('a container row keeps its snapshot (and its parents) and what its gc.ref labels reach', async () => {
    commitLayer('image-top');
    t.services.snapshots.prepare(NS, 'ctr-1', 'image-top', {});
    commitLayer('unused');
    const spec = await writeBlob(t.services, NS, 'referenced by a container label');
    t.services.meta.db
      .prepare(
        "INSERT INTO containers (namespace, id, labels, snapshotter, snapshot_key, created_at, updated_at) VALUES (?, 'ctr-1', ?, 'overlayfs', 'ctr-1', 1, 1)",
      )
      .run(NS, JSON.stringify({ 'containerd.io/gc.ref.content.spec': spec }));
    const result = await t.services.gc.collect();
    expect(result).toMatchObject({ snapshots: 1, content: 0 });
    expect(snapshotNames()).toEqual(['image-top', 'ctr-1']);
    expect(hasContent(spec)).toBe(true);
  });
});

describe('GarbageCollector leases', () => {
  it('a lease keeps its content and snapshots until deleted; delete(ns, id, true) collects them', async () => {
    t.services.leases.create(NS, 'pull');
    const digest = await writeBlob(t.services, NS, 'in flight', { lease: 'pull' });
    const dir = commitLayer('layer', '', 'pull');
    await t.services.gc.collect();
    expect(hasContent(digest)).toBe(true);
    expect(snapshotNames()).toEqual(['layer']);

    await t.services.leases.delete(NS, 'pull', true);
    expect(hasContent(digest)).toBe(false);
    expect(existsSync(blobFile(digest))).toBe(false);
    expect(snapshotNames()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('deleting one lease resource lets the collector take it', async () => {
    t.services.leases.create(NS, 'l');
    const a = await writeBlob(t.services, NS, 'a', { lease: 'l' });
    const b = await writeBlob(t.services, NS, 'b', { lease: 'l' });
    await t.services.leases.deleteResource(NS, 'l', { type: 'content', id: a });
    await t.services.gc.schedule(true);
    expect(hasContent(a)).toBe(false);
    expect(hasContent(b)).toBe(true);
  });

  it('removes an expired lease and collects its resources; an unexpired one stays', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    t.services.leases.create(NS, 'expired', { [EXPIRE_LABEL]: past });
    t.services.leases.create(NS, 'current', { [EXPIRE_LABEL]: future });
    const gone = await writeBlob(t.services, NS, 'gone', { lease: 'expired' });
    const kept = await writeBlob(t.services, NS, 'kept', { lease: 'current' });
    const result = await t.services.gc.collect();
    expect(result).toMatchObject({ leases: 1, content: 1 });
    expect(t.services.leases.list(NS).map((l) => l.id)).toEqual(['current']);
    await expectBerthError(() => t.services.leases.listResources(NS, 'expired'), 'NOT_FOUND');
    expect(hasContent(gone)).toBe(false);
    expect(existsSync(blobFile(gone))).toBe(false);
    expect(hasContent(kept)).toBe(true);
  });
});

describe('GarbageCollector lease expiry formats', () => {
  it('expires a lease whose RFC 3339 time has an offset and nanoseconds', async () => {
    t.services.leases.create(NS, 'offset', { [EXPIRE_LABEL]: '2001-02-03T04:05:06.123456789+01:00' });
    expect((await t.services.gc.collect()).leases).toBe(1);
    expect(t.services.leases.list(NS)).toEqual([]);
  });

  it('never expires a stored gc.expire that is not a time, as containerd does', async () => {
    t.services.leases.create(NS, 'odd');
    t.services.meta.db.prepare('UPDATE leases SET labels = ? WHERE id = ?').run(JSON.stringify({ [EXPIRE_LABEL]: '12' }), 'odd');
    const kept = await writeBlob(t.services, NS, 'kept by odd lease', { lease: 'odd' });
    expect((await t.services.gc.collect()).leases).toBe(0);
    expect(t.services.leases.list(NS).map((l) => l.id)).toEqual(['odd']);
    expect(hasContent(kept)).toBe(true);
  });
});

describe('GarbageCollector scheduling', () => {
  it('serves a burst of background triggers with one collection, and a waiting caller at once', async () => {
    await t.services.gc.schedule(true);
    const collections = vi.spyOn(t.services.gc, 'collect');
    for (let i = 0; i < 20; i++) void t.services.gc.schedule(false);
    await vi.waitFor(() => expect(collections).toHaveBeenCalledTimes(1), { timeout: 5_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(collections).toHaveBeenCalledTimes(1);
    await t.services.gc.schedule(true);
    expect(collections).toHaveBeenCalledTimes(2);
  });

  it('every schedule(true) resolves after a collection that started after the call', async () => {
    const a = await writeBlob(t.services, NS, 'first');
    const first = t.services.gc.schedule(true);
    const b = await writeBlob(t.services, NS, 'second');
    const second = t.services.gc.schedule(true);
    await Promise.all([first, second]);
    expect(hasContent(a)).toBe(false);
    expect(hasContent(b)).toBe(false);
  });
});

describe('GarbageCollector ingests', () => {
  const DAY_AND_AN_HOUR = (24 + 1) * 3600;

  /** An ingest of ref with some bytes that no writer holds any more, last written `ageSeconds` ago. */
  async function leftIngest(ref: string, ageSeconds: number): Promise<string> {
    const writer = await t.services.content.writer(NS, ref, 100, '');
    await writer.ingest.write(0, Buffer.from('partial bytes of an interrupted pull'));
    await writer.release();
    const dir = join(t.root, 'content', 'ingest', createHash('sha256').update(`${NS}\0${ref}`).digest('hex'));
    const when = Date.now() / 1000 - ageSeconds;
    utimesSync(join(dir, 'data'), when, when);
    utimesSync(dir, when, when);
    return dir;
  }

  it('removes an ingest idle for more than a day; keeps a recent one, a leased one and one a writer holds', async () => {
    const stale = await leftIngest('layer-stale', DAY_AND_AN_HOUR);
    const recent = await leftIngest('layer-recent', 60);
    const leased = await leftIngest('layer-leased', DAY_AND_AN_HOUR);
    t.services.leases.create(NS, 'pull-lease', {});
    t.services.leases.addResource(NS, 'pull-lease', { type: 'ingests', id: 'layer-leased' });
    const held = await leftIngest('layer-held', DAY_AND_AN_HOUR);
    const writer = await t.services.content.writer(NS, 'layer-held', 100, '');
    const when = Date.now() / 1000 - DAY_AND_AN_HOUR;
    utimesSync(join(held, 'data'), when, when);

    const result = await t.services.gc.collect();

    expect(result.ingests).toBe(1);
    expect(existsSync(stale)).toBe(false);
    expect([recent, leased, held].map((d) => existsSync(join(d, 'data')))).toEqual([true, true, true]);
    // The writer still owns its ingest and can finish it.
    const data = Buffer.from('partial bytes of an interrupted pull');
    expect(writer.ingest.offset).toBe(data.length);
    await writer.release();
    expect(await t.services.content.status(NS, 'layer-recent')).toMatchObject({ ref: 'layer-recent', offset: data.length });
  });

  it('an ingest whose status was torn by a crash goes by its directory time', async () => {
    const dir = await leftIngest('layer-torn', DAY_AND_AN_HOUR);
    rmSync(join(dir, 'status.json'));
    const when = Date.now() / 1000 - DAY_AND_AN_HOUR;
    utimesSync(dir, when, when);
    expect((await t.services.gc.collect()).ingests).toBe(1);
    expect(existsSync(dir)).toBe(false);
  });
});

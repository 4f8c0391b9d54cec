import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountAll, unmountAll } from '../../../services/mount/mount.js';
import { llistxattr, lsetxattr } from '../../../services/native/addon.js';
import { expectBerthError, openTestRoot, recordEvents, snapshotDirOf, type TestRoot } from './harness.js';

let t: TestRoot;
const NS = 'default';

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

const snapRoot = (): string => join(t.root, 'snapshots', 'overlayfs');
const dirOf = snapshotDirOf;
/** Everything under the snapshot root, layers' staging directory included. */
const snapEntries = (): string[] => [
  ...readdirSync(snapRoot()).filter((name) => name !== 'spread'),
  ...readdirSync(join(snapRoot(), 'spread')).map((name) => `spread/${name}`),
];

/** Prepares key on parent and commits it as name; returns the committed snapshot's directory. */
function layer(name: string, parent = ''): string {
  const mounts = t.services.snapshots.prepare(NS, `extract-${name}`, parent, {});
  t.services.snapshots.commit(NS, name, `extract-${name}`, {});
  return dirOf(mounts);
}

describe('snapshot placement', () => {
  // Each layer's snapshot is then placed by ext4 in a fresh block group (see OverlayLayout.init).
  // The test roots live on the machine's ext4 root filesystem, as /var/lib/berth does.
  // Elsewhere (tmpfs, xfs) the flag does not exist and the daemon opens without it.
  it('on ext4 layers are staged in a top directory for the block allocator, other snapshots not', () => {
    const fsType = execFileSync('stat', ['-f', '-c', '%T', snapRoot()], { encoding: 'utf8' }).trim();
    if (fsType !== 'ext2/ext3') return;
    const attrs = (dir: string): string => execFileSync('lsattr', ['-d', dir], { encoding: 'utf8' }).split(' ')[0] ?? '';
    expect(attrs(join(snapRoot(), 'spread'))).toContain('T');
    expect(attrs(snapRoot())).not.toContain('T');
  });
});

describe('SnapshotService prepare and view', () => {
  it('prepare without a parent returns a rw bind mount of <id>/fs', () => {
    const mounts = t.services.snapshots.prepare(NS, 'k1', '', {});
    expect(mounts).toHaveLength(1);
    const [m] = mounts;
    expect(m?.type).toBe('bind');
    expect(m?.options).toEqual(['rw', 'rbind']);
    expect(m?.source).toMatch(new RegExp(`^${snapRoot()}/\\d+/fs$`));
    expect(existsSync(m?.source ?? '')).toBe(true);
    expect(existsSync(join(dirOf(mounts), 'work'))).toBe(true);
    expect(t.services.snapshots.mounts(NS, 'k1')).toEqual(mounts);
  });

  it('prepare on a parent chain returns an overlay with upperdir, workdir and lowerdirs nearest first', () => {
    const base = layer('base');
    const mid = layer('mid', 'base');
    const top = layer('top', 'mid');
    const mounts = t.services.snapshots.prepare(NS, 'container', 'top', {});
    const own = dirOf(mounts);
    expect(mounts).toEqual([
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', `workdir=${own}/work`, `upperdir=${own}/fs`, `lowerdir=${top}/fs:${mid}/fs:${base}/fs`],
      },
    ]);
    expect(new Set([base, mid, top, own]).size).toBe(4);
  });

  it('a view is read-only: a ro bind of the parent with one parent, an overlay of lowerdirs with several', () => {
    const base = layer('base');
    expect(t.services.snapshots.view(NS, 'v1', 'base', {})).toEqual([{ type: 'bind', source: `${base}/fs`, options: ['ro', 'rbind'] }]);
    const mid = layer('mid', 'base');
    expect(t.services.snapshots.view(NS, 'v2', 'mid', {})).toEqual([
      { type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${mid}/fs:${base}/fs`] },
    ]);
    const empty = t.services.snapshots.view(NS, 'v3', '', {});
    expect(empty[0]?.options).toEqual(['ro', 'rbind']);
    expect(t.services.snapshots.stat(NS, 'v1').kind).toBe('view');
  });

  it('refuses an existing key, a missing parent and an uncommitted parent', async () => {
    const snaps = t.services.snapshots;
    snaps.prepare(NS, 'active', '', {});
    await expectBerthError(() => snaps.prepare(NS, 'active', '', {}), 'ALREADY_EXISTS', 'snapshot active: already exists');
    await expectBerthError(() => snaps.prepare(NS, 'child', 'missing', {}), 'NOT_FOUND', 'parent snapshot missing: not found');
    await expectBerthError(() => snaps.prepare(NS, 'child', 'active', {}), 'INVALID_ARGUMENT', /parent snapshot active is active; a parent must be committed/);
    await expectBerthError(() => snaps.prepare(NS, 'bad\nkey', '', {}), 'INVALID_ARGUMENT', /control characters/);
    expect(snaps.list(NS).map((s) => s.name)).toEqual(['active']);
    // Refused creations leave no directories behind.
    expect(snapEntries()).toHaveLength(1);
  });

  it('a failed prepare (unknown lease) leaves no directory and does not break the next prepare', async () => {
    const snaps = t.services.snapshots;
    await expectBerthError(() => snaps.prepare(NS, 'leased', '', {}, 'no-such-lease'), 'NOT_FOUND', /lease no-such-lease/);
    expect(snapEntries()).toEqual([]);
    const mounts = snaps.prepare(NS, 'next', '', {});
    expect(existsSync(mounts[0]?.source ?? '')).toBe(true);
    expect(snapEntries()).toHaveLength(1);
  });

  it('records a snapshot prepared under a lease as a lease resource', () => {
    t.services.leases.create(NS, 'l');
    t.services.snapshots.prepare(NS, 'extract-1 sha256:abc', '', {}, 'l');
    t.services.snapshots.commit(NS, 'sha256:abc', 'extract-1 sha256:abc', {}, 'l');
    expect(t.services.leases.listResources(NS, 'l')).toEqual(
      expect.arrayContaining([{ type: 'snapshots/overlayfs', id: 'sha256:abc' }]),
    );
  });

  it('keeps snapshots per namespace', async () => {
    t.services.snapshots.prepare('one', 'same-key', '', {});
    t.services.snapshots.prepare('two', 'same-key', '', {});
    await t.services.snapshots.remove('one', 'same-key');
    expect(t.services.snapshots.stat('two', 'same-key').kind).toBe('active');
    await expectBerthError(() => t.services.snapshots.stat('one', 'same-key'), 'NOT_FOUND');
  });
});

describe('SnapshotService commit', () => {
  it('renames the key to the name and turns active into committed, keeping the directory', () => {
    const snaps = t.services.snapshots;
    const mounts = snaps.prepare(NS, 'extract-1', '', { a: '1' });
    writeFileSync(join(mounts[0]?.source ?? '', 'file'), 'data');
    snaps.commit(NS, 'layer-1', 'extract-1', { b: '2' });
    const info = snaps.stat(NS, 'layer-1');
    expect(info).toMatchObject({ name: 'layer-1', parent: '', kind: 'committed', labels: { a: '1', b: '2' } });
    expect(existsSync(join(mounts[0]?.source ?? '', 'file'))).toBe(true);
    return expectBerthError(() => snaps.stat(NS, 'extract-1'), 'NOT_FOUND');
  });

  it('reports the parent of a committed child by name', () => {
    layer('base');
    layer('child', 'base');
    expect(t.services.snapshots.stat(NS, 'child')).toMatchObject({ parent: 'base', kind: 'committed' });
  });

  it('refuses to commit a committed snapshot or a view, or onto an existing name', async () => {
    const snaps = t.services.snapshots;
    layer('base');
    snaps.view(NS, 'v', 'base', {});
    snaps.prepare(NS, 'a', '', {});
    await expectBerthError(() => snaps.commit(NS, 'x', 'base', {}), 'FAILED_PRECONDITION', /committed; only active/);
    await expectBerthError(() => snaps.commit(NS, 'x', 'v', {}), 'FAILED_PRECONDITION', /is view/);
    await expectBerthError(() => snaps.commit(NS, 'base', 'a', {}), 'ALREADY_EXISTS');
    await expectBerthError(() => snaps.commit(NS, 'x', 'missing', {}), 'NOT_FOUND');
    expect(snaps.stat(NS, 'a').kind).toBe('active');
  });

  it('a commit under an unknown lease changes nothing', async () => {
    const snaps = t.services.snapshots;
    snaps.prepare(NS, 'extract-1', '', {});
    await expectBerthError(() => snaps.commit(NS, 'layer', 'extract-1', {}, 'no-such-lease'), 'NOT_FOUND', /lease no-such-lease/);
    expect(snaps.stat(NS, 'extract-1').kind).toBe('active');
    await expectBerthError(() => snaps.stat(NS, 'layer'), 'NOT_FOUND');
  });

  it('has no mounts for a committed snapshot', async () => {
    layer('base');
    await expectBerthError(() => t.services.snapshots.mounts(NS, 'base'), 'FAILED_PRECONDITION', /committed/);
  });

  it('publishes prepare, commit and remove events', async () => {
    const rec = recordEvents(t.services, ['topic~="^/snapshot/"']);
    layer('base');
    await t.services.snapshots.remove(NS, 'base');
    await rec.stop();
    expect(rec.topics()).toEqual([`${NS} /snapshot/prepare`, `${NS} /snapshot/commit`, `${NS} /snapshot/remove`]);
  });
});

describe('SnapshotService stat, list, update, usage, remove', () => {
  it('lists with filters on name, parent, kind and labels', () => {
    const snaps = t.services.snapshots;
    layer('base');
    snaps.prepare(NS, 'work', 'base', { role: 'rw' });
    snaps.view(NS, 'look', 'base', {});
    const names = (filters: string[]) => snaps.list(NS, filters).map((s) => s.name);
    expect(names([])).toEqual(['base', 'work', 'look']);
    expect(names(['kind==committed'])).toEqual(['base']);
    expect(names(['parent==base'])).toEqual(['work', 'look']);
    expect(names(['labels.role==rw'])).toEqual(['work']);
    expect(names(['name==look'])).toEqual(['look']);
  });

  it('updates labels with and without masks', async () => {
    const snaps = t.services.snapshots;
    snaps.prepare(NS, 'k', '', { a: '1', b: '2' });
    expect(snaps.update(NS, 'k', { c: '3' }, ['labels.c']).labels).toEqual({ a: '1', b: '2', c: '3' });
    expect(snaps.update(NS, 'k', {}, ['labels.a']).labels).toEqual({ b: '2', c: '3' });
    expect(snaps.update(NS, 'k', { z: '0' }).labels).toEqual({ z: '0' });
    expect(snaps.stat(NS, 'k').labels).toEqual({ z: '0' });
    await expectBerthError(() => snaps.update(NS, 'k', {}, ['kind']), 'INVALID_ARGUMENT', /cannot update "kind"/);
    await expectBerthError(() => snaps.update(NS, 'missing', { a: '1' }), 'NOT_FOUND');
  });

  it('reports usage growing with the files written', async () => {
    const snaps = t.services.snapshots;
    const mounts = snaps.prepare(NS, 'k', '', {});
    const before = await snaps.usage(NS, 'k');
    expect(before.inodes).toBe(1);
    const dir = mounts[0]?.source ?? '';
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'big'), Buffer.alloc(256 * 1024, 1));
    const after = await snaps.usage(NS, 'k');
    expect(after.inodes).toBe(3);
    expect(after.size).toBeGreaterThanOrEqual(before.size + 256 * 1024);
  });

  it('refuses to remove a snapshot while a child exists, then removes child and parent', async () => {
    const snaps = t.services.snapshots;
    const base = layer('base');
    snaps.prepare(NS, 'child', 'base', {});
    await expectBerthError(() => snaps.remove(NS, 'base'), 'FAILED_PRECONDITION', /cannot remove snapshot base: snapshot child depends on it/);
    expect(existsSync(base)).toBe(true);
    await snaps.remove(NS, 'child');
    await snaps.remove(NS, 'base');
    await snaps.removalsDone();
    expect(existsSync(base)).toBe(false);
    expect(snaps.list(NS)).toEqual([]);
    // What stays is kept for reuse: directories holding an empty fs and work, nothing else.
    for (const name of snapEntries()) {
      expect(name).toMatch(/^skeleton-/);
      expect(readdirSync(join(snapRoot(), name)).sort()).toEqual(['fs', 'work']);
      for (const sub of ['fs', 'work']) expect(readdirSync(join(snapRoot(), name, sub))).toEqual([]);
    }
    await expectBerthError(() => snaps.remove(NS, 'base'), 'NOT_FOUND');
  });

  it('reuses a removed snapshot\'s directory and work dir for the next container, with an fs made anew', async () => {
    const snaps = t.services.snapshots;
    layer('base');
    const first = dirOf(snaps.prepare(NS, 'c1', 'base', {}));
    const [dirIno, workIno] = ['', 'work'].map((f) => statSync(join(first, f)).ino);
    // What a container and overlayfs leave behind.
    mkdirSync(join(first, 'fs', 'run'));
    writeFileSync(join(first, 'fs', 'written'), 'x');
    chmodSync(join(first, 'fs'), 0o700);
    lsetxattr(join(first, 'fs'), 'user.left-behind', Buffer.from('1'));
    mkdirSync(join(first, 'work', 'work'));
    await snaps.remove(NS, 'c1');
    await snaps.removalsDone();
    const next = dirOf(snaps.prepare(NS, 'c2', 'base', {}));
    expect(next).not.toBe(first);
    expect([statSync(next).ino, statSync(join(next, 'work')).ino]).toEqual([dirIno, workIno]);
    expect(llistxattr(join(next, 'fs'))).not.toContain('user.left-behind');
    expect(readdirSync(join(next, 'fs'))).toEqual([]);
    expect(readdirSync(join(next, 'work'))).toEqual([]);
    expect(statSync(join(next, 'fs')).mode & 0o777).toBe(0o755);
    // Layers are never given a reused directory: they are placed for the block allocator.
    await snaps.remove(NS, 'c2');
    await snaps.removalsDone();
    expect(statSync(layer('other', 'base')).ino).not.toBe(dirIno);
    // A restart drops what was kept.
    const services = await t.reopen();
    await services.snapshots.cleanup();
    expect(snapEntries().filter((name) => name.startsWith('skeleton-'))).toEqual([]);
  });

  it('does not reuse the directory of a snapshot removed while an overlay still uses it', async () => {
    const snaps = t.services.snapshots;
    layer('base');
    const mounts = snaps.prepare(NS, 'busy', 'base', {});
    const target = join(t.root, 'mnt');
    mkdirSync(target);
    await mountAll(mounts, target);
    try {
      await snaps.remove(NS, 'busy');
      await snaps.removalsDone();
      // Removed as before, not kept.
      expect(snapEntries().filter((name) => name.startsWith('skeleton-') || name.startsWith('rm-'))).toEqual([]);
    } finally {
      await unmountAll(target);
    }
  });

  it('cleanup removes orphan directories and keeps real snapshots', async () => {
    const snaps = t.services.snapshots;
    const real = layer('base');
    const active = dirOf(snaps.prepare(NS, 'active', 'base', {}));
    mkdirSync(join(snapRoot(), '999', 'fs'), { recursive: true });
    mkdirSync(join(snapRoot(), 'new-deadbeef', 'fs'), { recursive: true });
    mkdirSync(join(snapRoot(), 'rm-7-cafe'), { recursive: true });
    mkdirSync(join(snapRoot(), 'spread', 'new-feedface', 'fs'), { recursive: true });
    expect(await snaps.cleanup()).toBe(4);
    expect(snapEntries().sort()).toEqual([real, active].map((d) => d.slice(snapRoot().length + 1)).sort());
    expect(existsSync(join(real, 'fs'))).toBe(true);
    expect(await snaps.cleanup()).toBe(0);
  });

  it('snapshots, their files and mounts survive a restart, and cleanup then keeps them', async () => {
    const base = layer('base');
    writeFileSync(join(base, 'fs', 'kept'), 'x');
    const mounts = t.services.snapshots.prepare(NS, 'work', 'base', { a: '1' });
    const services = await t.reopen();
    expect(await services.snapshots.cleanup()).toBe(0);
    expect(services.snapshots.mounts(NS, 'work')).toEqual(mounts);
    expect(services.snapshots.stat(NS, 'work')).toMatchObject({ parent: 'base', kind: 'active', labels: { a: '1' } });
    expect(existsSync(join(base, 'fs', 'kept'))).toBe(true);
    // Ids are never reused after a restart either.
    const next = dirOf(services.snapshots.prepare(NS, 'next', '', {}));
    expect([base, dirOf(mounts)]).not.toContain(next);
  });

  it('refuses a snapshotter other than overlayfs with INVALID_ARGUMENT', async () => {
    const snaps = t.services.snapshots;
    expect(() => snaps.checkSnapshotter('overlayfs')).not.toThrow();
    expect(() => snaps.checkSnapshotter('')).not.toThrow();
    await expectBerthError(() => snaps.checkSnapshotter('native'), 'INVALID_ARGUMENT', /snapshotter "native" is not available/);
    await expectBerthError(() => snaps.checkSnapshotter('btrfs'), 'INVALID_ARGUMENT', /"overlayfs"/);
  });
});

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../services/diff/apply.js';
import { diffMounts } from '../../../services/diff/diff.js';
import { type Mount, mountAll, unmountAll } from '../../../services/mount/mount.js';
import { lsetxattr, mknod } from '../../../services/native/addon.js';
import { MEDIA_TYPES, scratch, sha256 } from './fixtures.js';
import { summarizeTree } from './tree.js';

let work: ReturnType<typeof scratch>;
beforeEach(() => {
  work = scratch('diff');
});
afterEach(() => work.cleanup());

const T0 = 1_600_000_000;

/** A lower tree with every kind of entry a layer carries. */
function buildBase(root: string): void {
  const p = (name: string): string => path.join(root, name);
  fs.mkdirSync(p('etc/conf.d'), { recursive: true });
  fs.mkdirSync(p('usr/bin'), { recursive: true });
  fs.mkdirSync(p('var/cache/app'), { recursive: true });
  fs.mkdirSync(p('gone-dir/sub'), { recursive: true });
  fs.writeFileSync(p('etc/motd'), 'welcome\n');
  fs.writeFileSync(p('etc/conf.d/a'), 'a=1\n');
  fs.writeFileSync(p('etc/same-size'), 'aaaa');
  fs.writeFileSync(p('usr/bin/tool'), Buffer.alloc(2 << 20, 3));
  fs.chmodSync(p('usr/bin/tool'), 0o4755);
  fs.linkSync(p('usr/bin/tool'), p('usr/bin/tool-alias'));
  fs.symlinkSync('tool', p('usr/bin/sym'));
  fs.writeFileSync(p('var/cache/app/x'), 'x');
  fs.writeFileSync(p('gone-dir/sub/f'), 'f');
  fs.writeFileSync(p('to-dir'), 'file that becomes a dir');
  mknod(p('etc/null'), fs.constants.S_IFCHR | 0o666, 1, 3);
  mknod(p('etc/fifo'), fs.constants.S_IFIFO | 0o600, 0, 0);
  lsetxattr(p('etc/motd'), 'user.origin', Buffer.from('base'));
  fs.chownSync(p('var/cache'), 100, 101);
  touchAll(root, T0);
}

function touchAll(root: string, seconds: number): void {
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', `@${seconds}`, '{}', '+']);
}

/** Changes of every kind, made through `root` (a plain dir or a mounted overlay). */
function modify(root: string): void {
  const p = (name: string): string => path.join(root, name);
  fs.writeFileSync(p('etc/motd'), 'changed motd\n');
  fs.writeFileSync(p('etc/same-size'), 'bbbb');
  fs.utimesSync(p('etc/same-size'), T0, T0); // same size, same second: only the bytes differ
  fs.rmSync(p('etc/conf.d/a'));
  fs.rmSync(p('gone-dir'), { recursive: true });
  fs.rmSync(p('to-dir'));
  fs.mkdirSync(p('to-dir'));
  fs.writeFileSync(p('to-dir/inside'), 'now a dir');
  fs.rmSync(p('var/cache'), { recursive: true });
  fs.mkdirSync(p('var/cache'));
  fs.writeFileSync(p('var/cache/fresh'), 'fresh');
  fs.chmodSync(p('usr/bin/tool'), 0o755);
  fs.chownSync(p('etc/fifo'), 5, 5);
  fs.mkdirSync(p('opt/new/deep'), { recursive: true });
  fs.writeFileSync(p('opt/new/deep/file'), 'new');
  fs.linkSync(p('opt/new/deep/file'), p('opt/new/link'));
  lsetxattr(p('opt/new'), 'user.kind', Buffer.from('added'));
}

const bind = (dir: string): Mount[] => [{ type: 'bind', source: dir, options: ['rbind', 'ro'] }];

async function diffToFile(lower: Mount[], upper: Mount[], compression: 'gzip' | 'none') {
  const file = path.join(work.dir, `layer-${Math.random()}`);
  const result = await diffMounts(lower, upper, fs.createWriteStream(file), { compression });
  return { file, result, bytes: fs.readFileSync(file) };
}

async function entryNames(tarBytes: Buffer): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', () => next());
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve());
    extract.on('error', reject);
  });
  extract.end(tarBytes);
  await done;
  return names;
}

function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', `${from}/.`, to]);
}

function dirs(...names: string[]): string[] {
  return names.map((n) => {
    const d = path.join(work.dir, n);
    fs.mkdirSync(d, { recursive: true });
    return d;
  });
}

describe('diffMounts of two mounted trees (double walk)', () => {
  it('writes a layer that turns lower into upper, with correct digests', async () => {
    const [lower, upper, target] = dirs('lower', 'upper', 'target');
    buildBase(lower!);
    copyTree(lower!, upper!);
    modify(upper!);
    const { file, result, bytes } = await diffToFile(bind(lower!), bind(upper!), 'gzip');
    expect(result.digest).toBe(sha256(bytes));
    expect(result.size).toBe(bytes.length);
    const tarBytes = gunzipSync(bytes);
    expect(result.diffId).toBe(sha256(tarBytes));

    const names = await entryNames(tarBytes);
    expect(names).toEqual(expect.arrayContaining(['etc/motd', 'etc/conf.d/.wh.a', '.wh.gone-dir', 'etc/same-size']));
    expect(names).not.toContain('usr/bin/sym');
    expect(names.filter((n) => n.startsWith('gone-dir/'))).toEqual([]);

    copyTree(lower!, target!);
    const applied = await applyLayer({ blob: file, mediaType: MEDIA_TYPES.gzip, target: target!, whiteouts: 'delete' });
    expect(applied.digest).toBe(result.diffId);
    expect(summarizeTree(target!, { mtimes: true, xattrs: true })).toEqual(summarizeTree(upper!, { mtimes: true, xattrs: true }));
  });

  it('is deterministic', async () => {
    const [lower, upper] = dirs('lower', 'upper');
    buildBase(lower!);
    copyTree(lower!, upper!);
    modify(upper!);
    const first = await diffToFile(bind(lower!), bind(upper!), 'none');
    const second = await diffToFile(bind(lower!), bind(upper!), 'none');
    expect(second.result).toEqual(first.result);
    expect(first.result.digest).toBe(first.result.diffId);
  });

  it('diffs against an empty lower: the whole tree, hardlinks as links', async () => {
    const [upper, target] = dirs('upper', 'target');
    buildBase(upper!);
    const { file, result } = await diffToFile([], bind(upper!), 'none');
    const applied = await applyLayer({ blob: file, mediaType: MEDIA_TYPES.none, target: target!, whiteouts: 'delete' });
    expect(applied.digest).toBe(result.diffId);
    expect(summarizeTree(target!, { mtimes: true, xattrs: true })).toEqual(summarizeTree(upper!, { mtimes: true, xattrs: true }));
  });
});

describe('diffMounts of an overlay over its lower layer (upperdir read directly)', () => {
  it('turns overlay whiteouts and opaque dirs into OCI ones and round-trips', async () => {
    const [lower, upperdir, workdir, merged, target, targetOverlay] = dirs('lower', 'upperdir', 'work', 'merged', 'target', 'target-overlay');
    buildBase(lower!);
    const overlay: Mount[] = [{ type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${workdir}`, `upperdir=${upperdir}`, `lowerdir=${lower}`] }];
    await mountAll(overlay, merged!);
    let expected: ReturnType<typeof summarizeTree>;
    try {
      modify(merged!);
      expected = summarizeTree(merged!, { xattrs: true });
    } finally {
      await unmountAll(merged!);
    }

    const { file, result, bytes } = await diffToFile(bind(lower!), overlay, 'none');
    const names = await entryNames(bytes);
    // Only the upperdir knows a directory was replaced wholesale: the double walk never says so.
    expect(names).toContain('var/cache/.wh..wh..opq');
    expect(names).toContain('etc/conf.d/.wh.a');
    expect(names).toContain('.wh.gone-dir');
    expect(names).not.toContain('usr/bin/tool-alias');

    // Applied as a merged tree ('delete') ...
    copyTree(lower!, target!);
    expect((await applyLayer({ blob: file, mediaType: MEDIA_TYPES.none, target: target!, whiteouts: 'delete' })).digest).toBe(result.diffId);
    expect(summarizeTree(target!, { xattrs: true })).toEqual(expected);

    // ... and as a new upperdir over the same lower ('overlay').
    const [upper2, work2, merged2] = dirs('upper2', 'work2', 'merged2');
    await applyLayer({ blob: file, mediaType: MEDIA_TYPES.none, target: upper2!, whiteouts: 'overlay', parents: [lower!] });
    await mountAll([{ type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${work2}`, `upperdir=${upper2}`, `lowerdir=${lower}`, 'ro'] }], merged2!);
    try {
      expect(summarizeTree(merged2!, { xattrs: true })).toEqual(expected);
    } finally {
      await unmountAll(merged2!);
    }
    expect(fs.readdirSync(targetOverlay!)).toEqual([]);
  });
});

describe('diffMounts of an overlay with metacopy (upperdir holds stubs)', () => {
  it('falls back to walking the mounted trees, so chmod-ed files keep their data', async () => {
    const [lower, upperdir, workdir, merged, target] = dirs('lower', 'upperdir', 'work', 'merged', 'target');
    buildBase(lower!);
    const overlay: Mount[] = [{ type: 'overlay', source: 'overlay', options: ['index=off', 'metacopy=on', `workdir=${workdir}`, `upperdir=${upperdir}`, `lowerdir=${lower}`] }];
    await mountAll(overlay, merged!);
    let expected: ReturnType<typeof summarizeTree>;
    try {
      fs.chmodSync(path.join(merged!, 'usr/bin/tool'), 0o700);
      expected = summarizeTree(merged!);
    } finally {
      await unmountAll(merged!);
    }
    // The upperdir's copy is a metadata-only stub: reading it directly would lose the 2 MiB.
    expect(fs.statSync(path.join(upperdir!, 'usr/bin/tool')).blocks).toBe(0);
    const { file } = await diffToFile(bind(lower!), overlay, 'none');
    copyTree(lower!, target!);
    await applyLayer({ blob: file, mediaType: MEDIA_TYPES.none, target: target!, whiteouts: 'delete' });
    expect(summarizeTree(target!)).toEqual(expected);
  });
});

describe('diffMounts xattrs', () => {
  it('records UTF-8-valid values (file capabilities included) and leaves out others rather than corrupt the layer', async () => {
    const [upper, ours, gnu] = dirs('upper', 'ours', 'gnu');
    const longDir = path.join(upper!, 'l'.repeat(120));
    fs.mkdirSync(longDir);
    fs.writeFileSync(path.join(longDir, 'ping'), 'ping');
    execFileSync('setcap', ['cap_net_raw+ep', path.join(longDir, 'ping')]);
    lsetxattr(path.join(longDir, 'ping'), 'user.text', Buffer.from('kept'));
    fs.symlinkSync('t'.repeat(150), path.join(upper!, 'link'));
    lsetxattr(path.join(upper!, 'link'), 'trusted.blob', Buffer.from([0x00, 0xff, 0xc3, 0x28]));
    lsetxattr(path.join(upper!, 'link'), 'trusted.text', Buffer.from('héllo'));

    const { file, result } = await diffToFile([], bind(upper!), 'none');
    expect((await applyLayer({ blob: file, mediaType: MEDIA_TYPES.none, target: ours!, whiteouts: 'delete' })).digest).toBe(result.diffId);
    const expected = summarizeTree(upper!, { xattrs: true });
    delete expected.link?.xattrs?.['trusted.blob'];
    expect(summarizeTree(ours!, { xattrs: true })).toEqual(expected);

    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-C', gnu!, '-xf', file]);
    expect(fs.readlinkSync(path.join(gnu!, 'link'))).toBe('t'.repeat(150));
    // A capability's bytes are mostly below 0x80: valid UTF-8, so it travels.
    expect(execFileSync('getcap', [path.join(gnu!, 'l'.repeat(120), 'ping')]).toString()).toContain('cap_net_raw=ep');
  });
});

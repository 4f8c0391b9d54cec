import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer, applyLayerSource } from '../../../services/diff/apply.js';
import { isBerthError } from '../../../services/errors.js';
import { lgetxattr, lsetxattr } from '../../../services/native/addon.js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mountAll, unmountAll } from '../../../services/mount/mount.js';
import { summarizeTree } from './tree.js';
import { type Compression, MEDIA_TYPES, type FixtureEntry, compress, buildTar, scratch, sha256, writeLayer } from './fixtures.js';

let work: ReturnType<typeof scratch>;
let target: string;

beforeEach(() => {
  work = scratch('apply');
  target = path.join(work.dir, 'target');
  fs.mkdirSync(target);
});
afterEach(() => work.cleanup());

// Incompressible bytes make the compressed stream long enough to cross many read and
// decoder chunks.
const RANDOM = randomBytes(3 << 20);
const SIMPLE: FixtureEntry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/hostname', data: 'berth\n' },
  { name: 'big.bin', data: Buffer.alloc(3 << 20, 7) },
  { name: 'random.bin', data: RANDOM },
];

async function apply(entries: FixtureEntry[], whiteouts: 'overlay' | 'delete' = 'delete', extra: { parents?: string[] } = {}) {
  const layer = await writeLayer(work.dir, `layer-${Math.random()}.tar`, entries);
  return applyLayer({ blob: layer.blob, mediaType: layer.mediaType, target, whiteouts, ...extra });
}

describe('applyLayer media types', () => {
  const cases: Array<[string, Compression]> = [
    ['application/vnd.oci.image.layer.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
  ];
  it.each(cases)('%s', async (mediaType, compression) => {
    const tarData = await buildTar(SIMPLE);
    const blob = path.join(work.dir, 'blob');
    fs.writeFileSync(blob, compress(tarData, compression));
    const applied = await applyLayer({ blob, mediaType, target, whiteouts: 'delete' });
    expect(applied).toEqual({ digest: sha256(tarData), size: tarData.length });
    expect(fs.readFileSync(path.join(target, 'etc/hostname'), 'utf8')).toBe('berth\n');
    expect(fs.readFileSync(path.join(target, 'big.bin')).equals(Buffer.alloc(3 << 20, 7))).toBe(true);
    expect(fs.readFileSync(path.join(target, 'random.bin')).equals(RANDOM)).toBe(true);
  });

  it('rejects an unknown media type with INVALID_ARGUMENT before touching the target', async () => {
    const layer = await writeLayer(work.dir, 'l.tar', SIMPLE);
    const err = await applyLayer({ blob: layer.blob, mediaType: 'application/vnd.oci.image.config.v1+json', target, whiteouts: 'delete' }).catch((e: unknown) => e);
    expect(isBerthError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('trusts the bytes over the declared compression, as containerd does', async () => {
    const layer = await writeLayer(work.dir, 'l.tar', SIMPLE, 'none');
    const applied = await applyLayer({ blob: layer.blob, mediaType: MEDIA_TYPES.gzip, target, whiteouts: 'delete' });
    expect(applied.digest).toBe(sha256(layer.tar));
  });
});

describe('applyLayer preserves', () => {
  const mtime = new Date('2021-05-06T07:08:09Z');
  const seconds = mtime.getTime() / 1000;

  it('modes (setuid, setgid, sticky), owners and mtimes, directories last', async () => {
    await apply([
      { name: 'bin/', type: 'directory', mode: 0o751, uid: 3, gid: 4, mtime },
      { name: 'bin/su', data: 'x', mode: 0o4755, uid: 0, gid: 0, mtime },
      { name: 'bin/wall', data: 'x', mode: 0o2755, uid: 1000, gid: 5, mtime },
      { name: 'tmp/', type: 'directory', mode: 0o1777, mtime },
    ]);
    const bin = fs.statSync(path.join(target, 'bin'));
    expect([bin.mode & 0o7777, bin.uid, bin.gid, bin.mtimeMs / 1000]).toEqual([0o751, 3, 4, seconds]);
    const su = fs.statSync(path.join(target, 'bin/su'));
    expect([su.mode & 0o7777, su.mtimeMs / 1000]).toEqual([0o4755, seconds]);
    const wall = fs.statSync(path.join(target, 'bin/wall'));
    expect([wall.mode & 0o7777, wall.uid, wall.gid]).toEqual([0o2755, 1000, 5]);
    expect(fs.statSync(path.join(target, 'tmp')).mode & 0o7777).toBe(0o1777);
  });

  it('uids beyond the octal field and sub-second mtimes from PAX records', async () => {
    await apply([{ name: 'f', data: 'x', pax: { uid: '3000000000', gid: '2999999999', mtime: '1600000000.25' } }]);
    const st = fs.statSync(path.join(target, 'f'));
    expect([st.uid, st.gid, st.mtimeMs]).toEqual([3000000000, 2999999999, 1600000000250]);
  });

  it('symlinks with their own owner and mtime, never followed', async () => {
    await apply([{ name: 'usr/lib/libx.so', type: 'symlink', linkname: '../../nowhere/libx.so.1', uid: 7, gid: 8, mtime }]);
    const link = path.join(target, 'usr/lib/libx.so');
    const st = fs.lstatSync(link);
    expect(st.isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe('../../nowhere/libx.so.1');
    expect([st.uid, st.gid, st.mtimeMs / 1000]).toEqual([7, 8, seconds]);
  });

  it('hardlinks as one inode', async () => {
    await apply([
      { name: 'a/file', data: 'shared', mode: 0o640 },
      { name: 'b/alias', type: 'link', linkname: 'a/file', mode: 0o640 },
      { name: 'b/alias2', type: 'link', linkname: './a/../a/file', mode: 0o640 },
    ]);
    const a = fs.statSync(path.join(target, 'a/file'));
    const b = fs.statSync(path.join(target, 'b/alias'));
    expect(b.ino).toBe(a.ino);
    expect(a.nlink).toBe(3);
    expect(fs.readFileSync(path.join(target, 'b/alias2'), 'utf8')).toBe('shared');
  });

  it('fifos and character and block devices', async () => {
    await apply([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]);
    const nul = fs.statSync(path.join(target, 'dev/null'));
    expect([nul.isCharacterDevice(), nul.rdev, nul.mode & 0o7777]).toEqual([true, 0x103, 0o666]);
    const loop = fs.statSync(path.join(target, 'dev/loop9'));
    expect([loop.isBlockDevice(), loop.rdev, loop.gid]).toEqual([true, 0x709, 6]);
    expect(fs.statSync(path.join(target, 'run/fifo')).isFIFO()).toBe(true);
  });

  it('xattrs from PAX SCHILY.xattr records, on files, directories and symlinks', async () => {
    await apply([
      { name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.user.kind': 'dir' } },
      { name: 'd/f', data: 'x', pax: { 'SCHILY.xattr.user.kind': 'file', 'SCHILY.xattr.trusted.berth': 'yes' } },
      { name: 'd/l', type: 'symlink', linkname: 'f', pax: { 'SCHILY.xattr.trusted.kind': 'link' } },
    ]);
    expect(lgetxattr(path.join(target, 'd'), 'user.kind').toString()).toBe('dir');
    expect(lgetxattr(path.join(target, 'd/f'), 'user.kind').toString()).toBe('file');
    expect(lgetxattr(path.join(target, 'd/f'), 'trusted.berth').toString()).toBe('yes');
    expect(lgetxattr(path.join(target, 'd/l'), 'trusted.kind').toString()).toBe('link');
  });

  it('binary xattr values byte for byte, file capabilities included (PAX from GNU tar)', async () => {
    const src = path.join(work.dir, 'src');
    fs.mkdirSync(src);
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0x3d, 0x20, 0x01]);
    fs.writeFileSync(path.join(src, 'ping'), 'x');
    execFileSync('setcap', ['cap_net_raw+ep', path.join(src, 'ping')]);
    lsetxattr(path.join(src, 'ping'), 'user.blob', binary);
    const blob = path.join(work.dir, 'caps.tar');
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-C', src, '-cf', blob, 'ping']);
    await applyLayer({ blob, mediaType: MEDIA_TYPES.none, target, whiteouts: 'delete' });
    const applied = path.join(target, 'ping');
    expect(lgetxattr(applied, 'user.blob').equals(binary)).toBe(true);
    expect(lgetxattr(applied, 'security.capability').equals(lgetxattr(path.join(src, 'ping'), 'security.capability'))).toBe(true);
    expect(execFileSync('getcap', [applied]).toString()).toContain('cap_net_raw=ep');
  });

  it('long names (GNU long name and PAX path records)', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
    await apply([{ name: long, data: 'deep' }]);
    expect(fs.readFileSync(path.join(target, long), 'utf8')).toBe('deep');
  });
});

describe('applyLayer refuses what it cannot write faithfully', () => {
  it.each(['gnu', 'pax'])('sparse files (%s format) with INVALID_ARGUMENT', async (format) => {
    const src = path.join(work.dir, 'src');
    fs.mkdirSync(src);
    const fd = fs.openSync(path.join(src, 'sparse'), 'w');
    fs.writeSync(fd, 'tail', 8 << 20);
    fs.closeSync(fd);
    const blob = path.join(work.dir, `sparse-${format}.tar`);
    execFileSync('tar', ['--sparse', `--format=${format}`, '-C', src, '-cf', blob, 'sparse']);
    const err = await applyLayer({ blob, mediaType: MEDIA_TYPES.none, target, whiteouts: 'delete' }).catch((e: unknown) => e);
    expect(isBerthError(err, 'INVALID_ARGUMENT')).toBe(true);
  });
});

describe('applyLayer replaces existing entries', () => {
  it('by type: file over dir, dir over file, symlink over file; a dir over a dir merges', async () => {
    fs.mkdirSync(path.join(target, 'was-dir/sub'), { recursive: true });
    fs.writeFileSync(path.join(target, 'was-file'), 'old');
    fs.writeFileSync(path.join(target, 'was-file2'), 'old');
    fs.mkdirSync(path.join(target, 'merge'));
    fs.writeFileSync(path.join(target, 'merge/old'), 'kept');
    await apply([
      { name: 'was-dir', data: 'now a file' },
      { name: 'was-file/', type: 'directory', mode: 0o700 },
      { name: 'was-file/inside', data: 'x' },
      { name: 'was-file2', type: 'symlink', linkname: 'was-dir' },
      { name: 'merge/', type: 'directory', mode: 0o711 },
      { name: 'merge/new', data: 'added' },
    ]);
    expect(fs.readFileSync(path.join(target, 'was-dir'), 'utf8')).toBe('now a file');
    expect(fs.statSync(path.join(target, 'was-file')).mode & 0o777).toBe(0o700);
    expect(fs.readlinkSync(path.join(target, 'was-file2'))).toBe('was-dir');
    expect(fs.readdirSync(path.join(target, 'merge')).sort()).toEqual(['new', 'old']);
    expect(fs.statSync(path.join(target, 'merge')).mode & 0o777).toBe(0o711);
  });

  it('a directory over a symlinked directory: later entries go into the new directory', async () => {
    await apply([
      { name: 'real/', type: 'directory' },
      { name: 'a', type: 'symlink', linkname: 'real' },
      { name: 'a/through-link', data: 'x' },
      { name: 'a/', type: 'directory' },
      { name: 'a/inside', data: 'y' },
    ]);
    expect(fs.lstatSync(path.join(target, 'a')).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.join(target, 'a'))).toEqual(['inside']);
    expect(fs.readdirSync(path.join(target, 'real'))).toEqual(['through-link']);
  });

  it('a file over a hardlinked file leaves the other link alone', async () => {
    await apply([
      { name: 'a', data: 'original' },
      { name: 'b', type: 'link', linkname: 'a' },
      { name: 'b', data: 'replacement' },
    ]);
    expect(fs.readFileSync(path.join(target, 'a'), 'utf8')).toBe('original');
    expect(fs.readFileSync(path.join(target, 'b'), 'utf8')).toBe('replacement');
  });
});

describe('applyLayer whiteouts', () => {
  function lowerTree(): void {
    fs.mkdirSync(path.join(target, 'etc/conf.d'), { recursive: true });
    fs.writeFileSync(path.join(target, 'etc/motd'), 'old');
    fs.writeFileSync(path.join(target, 'etc/keep'), 'keep');
    fs.writeFileSync(path.join(target, 'etc/conf.d/a'), 'a');
    fs.mkdirSync(path.join(target, 'opq/sub'), { recursive: true });
    fs.writeFileSync(path.join(target, 'opq/old'), 'old');
    fs.writeFileSync(path.join(target, 'opq/sub/old'), 'old');
  }

  it("'delete' removes whited-out files and trees", async () => {
    lowerTree();
    await apply([
      { name: 'etc/.wh.motd', data: '' },
      { name: 'etc/.wh.conf.d', data: '' },
      { name: 'etc/.wh.never-existed', data: '' },
      { name: 'gone/.wh.x', data: '' },
    ]);
    expect(fs.readdirSync(path.join(target, 'etc'))).toEqual(['keep']);
    expect(fs.existsSync(path.join(target, 'gone'))).toBe(false);
  });

  it("'delete' empties an opaque dir of older entries but keeps this layer's", async () => {
    lowerTree();
    await apply([
      { name: 'opq/', type: 'directory' },
      { name: 'opq/new', data: 'new' },
      { name: 'opq/sub/', type: 'directory' },
      { name: 'opq/.wh..wh..opq', data: '' },
      { name: 'opq/sub/new', data: 'new' },
    ]);
    expect(fs.readdirSync(path.join(target, 'opq')).sort()).toEqual(['new', 'sub']);
    expect(fs.readdirSync(path.join(target, 'opq/sub'))).toEqual(['new']);
  });

  it("'overlay' writes 0/0 char devices and trusted.overlay.opaque, never touching lower entries", async () => {
    fs.mkdirSync(path.join(target, 'etc'));
    fs.writeFileSync(path.join(target, 'etc/motd'), 'left in the upperdir by an earlier apply');
    await apply(
      [
        { name: 'etc/.wh.motd', data: '', uid: 5, gid: 6 },
        { name: 'opq/', type: 'directory' },
        { name: 'opq/.wh..wh..opq', data: '' },
        { name: 'opq/new', data: 'new' },
      ],
      'overlay',
    );
    const wh = fs.lstatSync(path.join(target, 'etc/motd'));
    expect([wh.isCharacterDevice(), wh.rdev, wh.uid, wh.gid]).toEqual([true, 0, 5, 6]);
    expect(lgetxattr(path.join(target, 'opq'), 'trusted.overlay.opaque').toString()).toBe('y');
    expect(fs.existsSync(path.join(target, 'etc/.wh.motd'))).toBe(false);
    expect(fs.existsSync(path.join(target, 'opq/.wh..wh..opq'))).toBe(false);
  });

  it("'overlay' gives parent dirs it creates the lower layer's metadata", async () => {
    const lower = path.join(work.dir, 'lower');
    fs.mkdirSync(path.join(lower, 'srv/data'), { recursive: true });
    fs.chownSync(path.join(lower, 'srv/data'), 33, 44);
    fs.chmodSync(path.join(lower, 'srv/data'), 0o750);
    fs.utimesSync(path.join(lower, 'srv/data'), 1000, 1000);
    await apply([{ name: 'srv/data/file', data: 'x' }], 'overlay', { parents: [lower] });
    const st = fs.statSync(path.join(target, 'srv/data'));
    expect([st.uid, st.gid, st.mode & 0o7777, st.mtimeMs]).toEqual([33, 44, 0o750, 1000_000]);
  });

  it("gives the same tree in both modes: 'delete' on a copy of the lower, 'overlay' as an upperdir seen through overlayfs", async () => {
    const lowerLayer: FixtureEntry[] = [
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/motd', data: 'old' },
      { name: 'etc/keep', data: 'keep' },
      { name: 'var/', type: 'directory', mode: 0o711, uid: 9 },
      { name: 'var/lib/', type: 'directory' },
      { name: 'var/lib/db/', type: 'directory' },
      { name: 'var/lib/db/old', data: 'old' },
      { name: 'var/lib/db/sub/', type: 'directory' },
      { name: 'var/lib/db/sub/old', data: 'old' },
      { name: 'var/log/', type: 'directory', mode: 0o750, uid: 4, gid: 4 },
      { name: 'var/log/messages', data: 'log' },
      { name: 'bin/sh', data: 'shell', mode: 0o755 },
      { name: 'opt/tool/bin/tool', data: 'tool' },
    ];
    const upperLayer: FixtureEntry[] = [
      { name: 'etc/.wh.motd', data: '' },
      { name: 'var/lib/db/', type: 'directory' },
      { name: 'var/lib/db/.wh..wh..opq', data: '' },
      { name: 'var/lib/db/new', data: 'new' },
      { name: 'var/log/app.log', data: 'appended dir' },
      { name: '.wh.opt', data: '' },
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/.wh..wh..opq', data: '' },
      { name: 'bin/busybox', data: 'bb', mode: 0o755 },
    ];
    const lower = path.join(work.dir, 'lower');
    const upper = path.join(work.dir, 'upper');
    fs.mkdirSync(lower);
    fs.mkdirSync(upper);
    const lowerBlob = await writeLayer(work.dir, 'lower.tar', lowerLayer);
    await applyLayer({ blob: lowerBlob.blob, mediaType: lowerBlob.mediaType, target: lower, whiteouts: 'delete' });
    execFileSync('cp', ['-a', `${lower}/.`, target]);
    const upperBlob = await writeLayer(work.dir, 'upper.tar', upperLayer);
    await applyLayer({ blob: upperBlob.blob, mediaType: upperBlob.mediaType, target, whiteouts: 'delete' });
    await applyLayer({ blob: upperBlob.blob, mediaType: upperBlob.mediaType, target: upper, whiteouts: 'overlay', parents: [lower] });

    const merged = path.join(work.dir, 'merged');
    fs.mkdirSync(merged);
    await mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${upper}:${lower}`, 'ro'] }], merged);
    try {
      // Without mtimes: a directory the layer does not list gets "now" when 'delete' changes it
      // and the lower one's in an upperdir, in containerd as here.
      expect(summarizeTree(merged, { xattrs: true })).toEqual(summarizeTree(target, { xattrs: true }));
    } finally {
      await unmountAll(merged);
    }
    expect(Object.keys(summarizeTree(target)).sort()).toEqual([
      'bin', 'bin/busybox', 'etc', 'etc/keep', 'var', 'var/lib', 'var/lib/db', 'var/lib/db/new', 'var/log', 'var/log/app.log', 'var/log/messages',
    ]);
    // Parents created only for the whiteout or the new file took the lower directory's metadata.
    expect(fs.statSync(path.join(upper, 'var/log')).uid).toBe(4);
  });

  it('ignores AUFS metadata names', async () => {
    await apply([
      { name: '.wh..wh.plnk/', type: 'directory' },
      { name: '.wh..wh.plnk/1234.5678', data: 'aufs link target' },
      { name: 'x/.wh..wh.aufs', data: '' },
    ]);
    expect(fs.readdirSync(target)).toEqual([]);
  });
});

describe('applyLayerSource', () => {
  it('applies bytes as they arrive, recognising the compression across tiny first chunks', async () => {
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      const dir = path.join(target, compression);
      fs.mkdirSync(dir);
      const tarData = await buildTar(SIMPLE);
      const blob = compress(tarData, compression);
      async function* trickle(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 3; i++) yield blob.subarray(i, i + 1);
        for (let i = 3; i < blob.length; i += 65536) yield blob.subarray(i, i + 65536);
      }
      const applied = await applyLayerSource({ source: trickle(), name: compression, mediaType: MEDIA_TYPES[compression], target: dir, whiteouts: 'delete' });
      expect(applied).toEqual({ digest: sha256(tarData), size: tarData.length });
      expect(fs.readFileSync(path.join(dir, 'etc/hostname'), 'utf8')).toBe('berth\n');
    }
  });

  // A pull cancelled before this layer's turn: its download fails too, moments later. That
  // failure is the apply's to handle; vitest fails the run on an unhandled rejection.
  it('with its signal already aborted, refuses at once and handles the source failing afterwards', async () => {
    let failSource: (err: Error) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => (failSource = reject));
    async function* download(): AsyncGenerator<Buffer> {
      yield await failed;
    }
    const abort = new AbortController();
    abort.abort();
    const applying = applyLayerSource({ source: download(), name: 'cancelled', mediaType: MEDIA_TYPES.gzip, target, whiteouts: 'delete', signal: abort.signal });
    await expect(applying).rejects.toMatchObject({ code: 'CANCELLED' });
    failSource(new Error('GET blob: cancelled'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('with its signal already aborted, lets go of a source that delivers its first bytes afterwards', async () => {
    let deliver: (chunk: Buffer) => void = () => undefined;
    const first = new Promise<Buffer>((resolve) => (deliver = resolve));
    let released = false;
    async function* download(): AsyncGenerator<Buffer> {
      try {
        yield await first;
        yield Buffer.alloc(1 << 20);
      } finally {
        released = true; // a file source closes its fd here
      }
    }
    const abort = new AbortController();
    abort.abort();
    const applying = applyLayerSource({ source: download(), name: 'late', mediaType: MEDIA_TYPES.gzip, target, whiteouts: 'delete', signal: abort.signal });
    await expect(applying).rejects.toMatchObject({ code: 'CANCELLED' });
    deliver(compress(await buildTar(SIMPLE), 'gzip'));
    for (let i = 0; i < 50 && !released; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(released).toBe(true);
    expect(fs.readdirSync(target)).toEqual([]);
  });
});

describe('applyLayer lifecycle', () => {
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

  it('rejects a missing target or blob without leaving an fd open', async () => {
    const layer = await writeLayer(work.dir, 'l.tar', SIMPLE);
    const before = openFds();
    await expect(applyLayer({ blob: layer.blob, mediaType: layer.mediaType, target: path.join(work.dir, 'absent'), whiteouts: 'delete' })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(applyLayer({ blob: path.join(work.dir, 'absent.tar'), mediaType: layer.mediaType, target, whiteouts: 'delete' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(openFds()).toBe(before);
  });

  it('stops on abort, rejects CANCELLED and leaves no fd open', async () => {
    const layer = await writeLayer(work.dir, 'big.tar', [{ name: 'huge', data: Buffer.alloc(64 << 20, 1) }], 'gzip');
    const before = openFds();
    const controller = new AbortController();
    const applying = applyLayer({ blob: layer.blob, mediaType: layer.mediaType, target, whiteouts: 'delete', signal: controller.signal });
    setImmediate(() => controller.abort());
    const err = await applying.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CANCELLED' });
    expect(openFds()).toBe(before);
  });

  it('stops on abort while its source stalls mid-file (a hung download), closing the file', async () => {
    const tarData = await buildTar([{ name: 'huge', data: Buffer.alloc(8 << 20, 1) }]);
    async function* stalled(): AsyncGenerator<Buffer> {
      yield tarData.subarray(0, 100_000);
      await new Promise(() => {});
    }
    const before = openFds();
    const controller = new AbortController();
    const applying = applyLayerSource({ source: stalled(), name: 'stalled', mediaType: MEDIA_TYPES.none, target, whiteouts: 'delete', signal: controller.signal });
    // Abort once the file is being written, i.e. while its fd is open.
    while (!fs.existsSync(path.join(target, 'huge'))) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await expect(applying).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(openFds()).toBe(before);
  });

  it('stops on abort while its source stalls before the first bytes', async () => {
    let started!: () => void;
    const reading = new Promise<void>((resolve) => (started = resolve));
    async function* silent(): AsyncGenerator<Buffer> {
      started();
      await new Promise(() => {});
    }
    const controller = new AbortController();
    const applying = applyLayerSource({ source: silent(), name: 'silent', mediaType: MEDIA_TYPES.gzip, target, whiteouts: 'delete', signal: controller.signal });
    await reading;
    controller.abort();
    await expect(applying).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('rejects a truncated archive and leaves no fd open', async () => {
    const tarData = await buildTar([{ name: 'f', data: Buffer.alloc(1 << 20, 2) }]);
    const blob = path.join(work.dir, 'cut.tar.gz');
    fs.writeFileSync(blob, compress(tarData.subarray(0, 600_000), 'gzip'));
    const before = openFds();
    await expect(applyLayer({ blob, mediaType: MEDIA_TYPES.gzip, target, whiteouts: 'delete' })).rejects.toThrow();
    expect(openFds()).toBe(before);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../services/diff/apply.js';
import { llistxattr } from '../../../services/native/addon.js';
import { type FixtureEntry, scratch, writeLayer } from './fixtures.js';

// Each case applies a hand-made malicious layer next to a host directory holding a sentinel file,
// then checks that the host directory is byte-for-byte and inode-for-inode what it was.

let work: ReturnType<typeof scratch>;
let host: string;
let sentinel: string;
let target: string;

interface HostSnapshot {
  listing: string[];
  content: string;
  mode: number;
  uid: number;
  nlink: number;
  mtimeMs: number;
  xattrs: string[];
}

function snapshotHost(): HostSnapshot {
  const st = fs.lstatSync(sentinel);
  return {
    listing: fs.readdirSync(host, { recursive: true }).map(String).sort(),
    content: fs.readFileSync(sentinel, 'utf8'),
    mode: st.mode,
    uid: st.uid,
    nlink: st.nlink,
    mtimeMs: st.mtimeMs,
    xattrs: llistxattr(sentinel),
  };
}

beforeEach(() => {
  work = scratch('security');
  host = path.join(work.dir, 'host');
  sentinel = path.join(host, 'sentinel');
  target = path.join(work.dir, 'rootfs');
  fs.mkdirSync(path.join(host, 'sub'), { recursive: true });
  fs.writeFileSync(sentinel, 'host data');
  fs.chmodSync(sentinel, 0o600);
  fs.writeFileSync(path.join(host, 'sub/inner'), 'inner');
  fs.mkdirSync(target);
});
afterEach(() => work.cleanup());

/** Applies the layer (it may be rejected) and asserts the host side is untouched. */
async function expectContained(entries: FixtureEntry[], whiteouts: 'overlay' | 'delete' = 'delete'): Promise<'applied' | 'rejected'> {
  const before = snapshotHost();
  const layer = await writeLayer(work.dir, 'evil.tar', entries);
  const outcome = await applyLayer({ blob: layer.blob, mediaType: layer.mediaType, target, whiteouts }).then(
    () => 'applied' as const,
    () => 'rejected' as const,
  );
  expect(snapshotHost()).toEqual(before);
  expect(fs.readdirSync(work.dir).sort()).toEqual(['evil.tar', 'host', 'rootfs']);
  return outcome;
}

const modes = ['delete', 'overlay'] as const;

describe.each(modes)('malicious layers (%s whiteouts) never touch the host', (mode) => {
  it('clamps ../ names inside the target', async () => {
    expect(await expectContained([{ name: '../host/sentinel', data: 'pwned' }, { name: '../../../../../../x', data: 'x' }], mode)).toBe('applied');
    expect(fs.readFileSync(path.join(target, 'host/sentinel'), 'utf8')).toBe('pwned');
    expect(fs.existsSync(path.join(target, 'x'))).toBe(true);
  });

  it('clamps absolute names inside the target', async () => {
    expect(await expectContained([{ name: sentinel, data: 'pwned' }], mode)).toBe('applied');
    expect(fs.readFileSync(path.join(target, sentinel), 'utf8')).toBe('pwned');
  });

  it('writes a file through an absolute dir symlink inside the target', async () => {
    await expectContained([{ name: 'escape', type: 'symlink', linkname: host }, { name: 'escape/sentinel', data: 'pwned' }], mode);
    expect(fs.readFileSync(path.join(target, host, 'sentinel'), 'utf8')).toBe('pwned');
  });

  it('writes a file through a relative ../ dir symlink inside the target', async () => {
    await expectContained([
      { name: 'a/b/escape', type: 'symlink', linkname: '../../../../host' },
      { name: 'a/b/escape/sentinel', data: 'pwned' },
      { name: 'a/b/escape/sub/inner', data: 'pwned' },
    ], mode);
    expect(fs.readFileSync(path.join(target, 'host/sentinel'), 'utf8')).toBe('pwned');
  });

  it('follows chains of symlinked parents inside the target', async () => {
    await expectContained([
      { name: 'l1', type: 'symlink', linkname: 'l2/sub' },
      { name: 'l2', type: 'symlink', linkname: host },
      { name: 'l1/inner', data: 'pwned' },
    ], mode);
    expect(fs.readFileSync(path.join(target, host, 'sub/inner'), 'utf8')).toBe('pwned');
  });

  it('replaces a symlink to a host file instead of writing through it', async () => {
    await expectContained([
      { name: 'link', type: 'symlink', linkname: sentinel },
      { name: 'link', data: 'pwned', mode: 0o777 },
      { name: 'dirlink', type: 'symlink', linkname: host },
      { name: 'dirlink/', type: 'directory', mode: 0o777 },
    ], mode);
    expect(fs.readFileSync(path.join(target, 'link'), 'utf8')).toBe('pwned');
    expect(fs.lstatSync(path.join(target, 'dirlink')).isDirectory()).toBe(true);
  });

  it('rejects hardlinks to host files, by ../, absolute name or symlinked parent', async () => {
    expect(await expectContained([{ name: 'h1', type: 'link', linkname: '../host/sentinel' }], mode)).toBe('rejected');
    expect(await expectContained([{ name: 'h2', type: 'link', linkname: sentinel }], mode)).toBe('rejected');
    expect(await expectContained([{ name: 'd', type: 'symlink', linkname: host }, { name: 'h3', type: 'link', linkname: 'd/sentinel' }], mode)).toBe('rejected');
  });

  it('links a hardlink named with ../ to the file of that name inside the target', async () => {
    await expectContained([{ name: 'host/sentinel', data: 'inside' }, { name: 'h', type: 'link', linkname: '../../host/sentinel' }], mode);
    expect(fs.statSync(path.join(target, 'h')).ino).toBe(fs.statSync(path.join(target, 'host/sentinel')).ino);
  });

  it('keeps whiteouts by ../, absolute name or symlinked parent inside the target', async () => {
    await expectContained([
      { name: '../host/.wh.sentinel', data: '' },
      { name: `${host}/.wh.sub`, data: '' },
      { name: 'd', type: 'symlink', linkname: host },
      { name: 'd/.wh.sentinel', data: '' },
      { name: 'd/.wh..wh..opq', data: '' },
      { name: 'r', type: 'symlink', linkname: '../../host' },
      { name: 'r/.wh.sub', data: '' },
      { name: 'r/.wh..wh..opq', data: '' },
    ], mode);
  });

  it('creates device nodes only inside the target', async () => {
    await expectContained([
      { name: '../host/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'd', type: 'symlink', linkname: host },
      { name: 'd/disk', type: 'block-device', devmajor: 7, devminor: 0 },
      { name: 'sentinel-node', type: 'symlink', linkname: sentinel },
      { name: 'sentinel-node', type: 'fifo' },
    ], mode);
    expect(fs.statSync(path.join(target, 'host/null')).isCharacterDevice()).toBe(true);
    expect(fs.statSync(path.join(target, host, 'disk')).isBlockDevice()).toBe(true);
    expect(fs.lstatSync(path.join(target, 'sentinel-node')).isFIFO()).toBe(true);
  });

  it('fails on symlink loops instead of hanging', async () => {
    expect(await expectContained([
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'a' },
      { name: 'a/file', data: 'x' },
    ], mode)).toBe('rejected');
  });
});

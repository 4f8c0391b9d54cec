import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../services/diff/apply.js';
import { lsetxattr, mknod } from '../../../services/native/addon.js';
import { MEDIA_TYPES, scratch, sha256 } from './fixtures.js';
import { summarizeTree } from './tree.js';

// The reference for "what applying a plain layer means" is GNU tar extracting it as root: every
// entry it creates must come out of applyLayer identical in type, mode, owner, size, content,
// link target, device number, hardlink grouping, xattrs and mtime.

let work: ReturnType<typeof scratch>;
const FILES_PER_DIR = 100;
const DIRS = 30;

function generateTree(root: string, seed: number): void {
  let state = seed;
  const next = (): number => (state = (state * 1103515245 + 12345) % 2147483648);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(root, `usr/share/d${String(d).padStart(2, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES_PER_DIR; f++) {
      const file = path.join(dir, `file-${f}.txt`);
      fs.writeFileSync(file, Buffer.alloc(next() % 9000, `${seed}-${d}-${f}`));
      fs.chmodSync(file, [0o644, 0o600, 0o755, 0o4755, 0o2711, 0o444][f % 6] as number);
      if (f % 7 === 0) fs.chownSync(file, 1000 + (f % 3), 50 + (d % 4));
    }
    fs.chmodSync(dir, d % 5 === 0 ? 0o1777 : 0o755);
  }
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bin/big'), Buffer.alloc(5 << 20, seed));
  fs.linkSync(path.join(root, 'bin/big'), path.join(root, 'bin/big-link'));
  fs.symlinkSync('big', path.join(root, 'bin/rel-link'));
  fs.symlinkSync('/usr/share/d01/file-1.txt', path.join(root, 'bin/abs-link'));
  fs.writeFileSync(path.join(root, 'bin/empty'), '');
  const long = path.join(root, 'deep', 'x'.repeat(90), 'y'.repeat(90));
  fs.mkdirSync(long, { recursive: true });
  fs.writeFileSync(path.join(long, 'z'.repeat(120)), 'long name');
  fs.mkdirSync(path.join(root, 'dev'));
  mknod(path.join(root, 'dev/null'), fs.constants.S_IFCHR | 0o666, 1, 3);
  mknod(path.join(root, 'dev/sda'), fs.constants.S_IFBLK | 0o660, 8, 0);
  mknod(path.join(root, 'dev/fifo'), fs.constants.S_IFIFO | 0o620, 0, 0);
  lsetxattr(path.join(root, 'bin/big'), 'user.checksum', Buffer.from('abc123'));
  lsetxattr(path.join(root, 'usr/share'), 'trusted.note', Buffer.from('dir xattr'));
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', `@${1_500_000_000 + seed}`, '{}', '+']);
}

function gnuTar(source: string, out: string): void {
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-C', source, '-cf', out, '.']);
}

function gnuExtract(tarFile: string, target: string): void {
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '--same-owner', '-p', '-C', target, '-xf', tarFile]);
}

beforeAll(() => {
  work = scratch('gnutar');
});
afterAll(() => work.cleanup());

describe('applyLayer matches GNU tar extraction', () => {
  it('for a tree of a few thousand entries, then a second layer over it', async () => {
    const src1 = path.join(work.dir, 'src1');
    generateTree(src1, 1);
    const layer1 = path.join(work.dir, 'layer1.tar');
    gnuTar(src1, layer1);

    // Layer 2 rewrites some files, replaces a symlink by a file and a file by a symlink, adds more.
    const src2 = path.join(work.dir, 'src2');
    fs.mkdirSync(path.join(src2, 'usr/share/d03'), { recursive: true });
    fs.mkdirSync(path.join(src2, 'bin'));
    fs.writeFileSync(path.join(src2, 'usr/share/d03/file-5.txt'), 'rewritten');
    fs.writeFileSync(path.join(src2, 'bin/rel-link'), 'now a file');
    fs.symlinkSync('rel-link', path.join(src2, 'bin/empty'));
    fs.mkdirSync(path.join(src2, 'opt/added'), { recursive: true });
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(src2, `opt/added/${i}`), `added ${i}`);
    execFileSync('find', [src2, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+']);
    const layer2 = path.join(work.dir, 'layer2.tar.gz');
    execFileSync('tar', ['--numeric-owner', '-C', src2, '-czf', layer2, '.']);

    const ours = path.join(work.dir, 'ours');
    const theirs = path.join(work.dir, 'theirs');
    fs.mkdirSync(ours);
    fs.mkdirSync(theirs);
    const applied1 = await applyLayer({ blob: layer1, mediaType: MEDIA_TYPES.none, target: ours, whiteouts: 'delete' });
    expect(applied1.digest).toBe(sha256(fs.readFileSync(layer1)));
    gnuExtract(layer1, theirs);
    const afterLayer1 = summarizeTree(ours, { mtimes: true, xattrs: true });
    expect(Object.keys(afterLayer1).length).toBeGreaterThan(DIRS * FILES_PER_DIR);
    expect(afterLayer1).toEqual(summarizeTree(theirs, { mtimes: true, xattrs: true }));

    await applyLayer({ blob: layer2, mediaType: MEDIA_TYPES.gzip, target: ours, whiteouts: 'delete' });
    gnuExtract(layer2, theirs);
    expect(summarizeTree(ours, { mtimes: true, xattrs: true })).toEqual(summarizeTree(theirs, { mtimes: true, xattrs: true }));
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lgetxattr, llistxattr, lremovexattr, lsetxattr, mknod, resolveInRoot } from '../../../services/native/addon.js';
import { scratch } from './fixtures.js';

let work: ReturnType<typeof scratch>;
beforeEach(() => {
  work = scratch('native');
});
afterEach(() => work.cleanup());

describe('native addon errors', () => {
  it('carry the errno name as code and name the path', () => {
    const missing = path.join(work.dir, 'no/such/dir/node');
    let caught: unknown;
    try {
      mknod(missing, fs.constants.S_IFIFO | 0o600, 0, 0);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toMatchObject({ code: 'ENOENT', path: missing });
    expect((caught as Error).message).toContain(missing);
    expect(() => lgetxattr(work.dir, 'user.absent')).toThrow(expect.objectContaining({ code: 'ENODATA' }));
  });

  it('reject arguments of the wrong type', () => {
    expect(() => mknod(42 as unknown as string, 0, 0, 0)).toThrow(TypeError);
  });
});

describe('mknod', () => {
  it('creates character devices, block devices and fifos', () => {
    mknod(path.join(work.dir, 'null'), fs.constants.S_IFCHR | 0o666, 1, 3);
    mknod(path.join(work.dir, 'fifo'), fs.constants.S_IFIFO | 0o600, 0, 0);
    expect(fs.statSync(path.join(work.dir, 'null')).rdev).toBe(0x103);
    expect(fs.statSync(path.join(work.dir, 'fifo')).isFIFO()).toBe(true);
  });
});

describe('l*xattr', () => {
  it('set, list, get and remove on a symlink itself, not its target', () => {
    const file = path.join(work.dir, 'file');
    const link = path.join(work.dir, 'link');
    fs.writeFileSync(file, '');
    fs.symlinkSync(file, link);
    lsetxattr(link, 'trusted.a', Buffer.from([0, 1, 2, 255]));
    lsetxattr(link, 'trusted.b', Buffer.alloc(0));
    expect(llistxattr(link).sort()).toEqual(['trusted.a', 'trusted.b']);
    expect(lgetxattr(link, 'trusted.a')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(llistxattr(file)).toEqual([]);
    lremovexattr(link, 'trusted.a');
    expect(llistxattr(link)).toEqual(['trusted.b']);
  });
});

describe('resolveInRoot', () => {
  it('keeps .., absolute names and absolute or relative symlinks inside the root', () => {
    const root = path.join(work.dir, 'root');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.symlinkSync('/etc', path.join(root, 'abs'));
    fs.symlinkSync('../../../../etc', path.join(root, 'rel'));
    for (const name of ['../../etc', '/etc', 'abs', 'rel', 'abs/../../etc']) {
      expect(resolveInRoot(root, name).path).toBe(path.join(root, 'etc'));
    }
    expect(resolveInRoot(root, 'etc').mode & fs.constants.S_IFMT).toBe(fs.constants.S_IFDIR);
  });

  it('fails on missing targets and symlink loops', () => {
    const root = path.join(work.dir, 'root');
    fs.mkdirSync(root);
    fs.symlinkSync('b', path.join(root, 'a'));
    fs.symlinkSync('a', path.join(root, 'b'));
    expect(() => resolveInRoot(root, 'missing')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => resolveInRoot(root, 'a')).toThrow(expect.objectContaining({ code: 'ELOOP' }));
  });
});

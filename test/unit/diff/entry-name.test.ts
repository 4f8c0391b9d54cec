import { describe, expect, it } from 'vitest';
import { cleanEntryName, splitName, symlinkTargetName } from '../../../services/diff/entry-name.js';
import { classifyWhiteout } from '../../../services/diff/whiteouts.js';
import { declaredCompression } from '../../../services/diff/media.js';
import { isBerthError } from '../../../services/errors.js';

describe('cleanEntryName', () => {
  it.each([
    ['./etc/passwd', 'etc/passwd'],
    ['etc/', 'etc'],
    ['/etc//ssl/./certs/', 'etc/ssl/certs'],
    ['../../../etc/shadow', 'etc/shadow'],
    ['a/../../b', 'b'],
    ['/', ''],
    ['./', ''],
    ['..', ''],
    ['', ''],
  ])('%j -> %j', (name, clean) => expect(cleanEntryName(name)).toBe(clean));
});

describe('splitName', () => {
  it('splits into parent and base', () => {
    expect(splitName('a/b/c')).toEqual({ parent: 'a/b', base: 'c' });
    expect(splitName('c')).toEqual({ parent: '', base: 'c' });
  });
});

describe('symlinkTargetName', () => {
  it('resolves relative targets from the link directory and clamps at the root', () => {
    expect(symlinkTargetName('usr/lib', '../share')).toBe('usr/share');
    expect(symlinkTargetName('a', '../../../../etc')).toBe('etc');
    expect(symlinkTargetName('a/b', '/etc')).toBe('etc');
  });
});

describe('classifyWhiteout', () => {
  it('recognises removals, opaque markers and AUFS metadata', () => {
    expect(classifyWhiteout('file')).toBeNull();
    expect(classifyWhiteout('.wh.file')).toEqual({ kind: 'remove', name: 'file' });
    expect(classifyWhiteout('.wh..hidden')).toEqual({ kind: 'remove', name: '.hidden' });
    expect(classifyWhiteout('.wh..wh..opq')).toEqual({ kind: 'opaque' });
    expect(classifyWhiteout('.wh..wh.plnk')).toEqual({ kind: 'ignore' });
  });

  it('never names the directory itself or its parent', () => {
    expect(classifyWhiteout('.wh.')).toEqual({ kind: 'ignore' });
    expect(classifyWhiteout('.wh..')).toEqual({ kind: 'ignore' });
    expect(classifyWhiteout('.wh...')).toEqual({ kind: 'ignore' });
  });
});

describe('declaredCompression', () => {
  it('maps layer media types and rejects others with INVALID_ARGUMENT', () => {
    expect(declaredCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip');
    expect(declaredCompression('application/vnd.oci.image.layer.v1.tar+zstd')).toBe('zstd');
    let caught: unknown;
    try {
      declaredCompression('application/vnd.oci.image.layer.v1.tar+bzip2');
    } catch (err) {
      caught = err;
    }
    expect(isBerthError(caught, 'INVALID_ARGUMENT')).toBe(true);
  });
});

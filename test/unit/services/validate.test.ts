import { describe, expect, it } from 'vitest';
import {
  parseDigest,
  validateDigest,
  validateIdentifier,
  validateKey,
  validateLabels,
  validateLeaseId,
  validateNamespace,
} from '../../../services/validate.js';
import { expectBerthError } from './harness.js';

const HEX = 'a'.repeat(64);

describe('validateNamespace', () => {
  it.each(['default', 'k8s.io', 'moby', 'a-b_c.d', 'A1', 'x'.repeat(76)])('accepts %j', (name) => {
    expect(validateNamespace(name)).toBe(name);
  });

  it.each([
    ['', /must not be empty/],
    ['-lead', /invalid/],
    ['trail.', /invalid/],
    ['two..dots', /invalid/],
    ['has space', /invalid/],
    ['../etc', /invalid/],
    ['a/b', /invalid/],
    ['nul\u0000', /invalid/],
  ])('refuses %j', async (name, message) => {
    await expectBerthError(() => validateNamespace(name), 'INVALID_ARGUMENT', message);
  });

  it('refuses a name longer than 76 characters, saying so', async () => {
    await expectBerthError(() => validateNamespace('x'.repeat(77)), 'INVALID_ARGUMENT', /longer than 76/);
  });
});

describe('validateIdentifier', () => {
  it('accepts containerd identifiers', () => {
    expect(validateIdentifier('container', 'redis-1.main_x')).toBe('redis-1.main_x');
  });

  it.each([
    ['', /container id must not be empty/],
    ['a b', /container id "a b": invalid/],
    ['../x', /invalid/],
    ['_x', /invalid/],
    ['y'.repeat(77), /longer than 76/],
  ])('refuses %j naming the kind', async (id, message) => {
    await expectBerthError(() => validateIdentifier('container', id), 'INVALID_ARGUMENT', message);
  });
});

describe('validateLeaseId', () => {
  it.each(['343629245-lqL_', '1700000000000000000-ab12', 'plain'])('accepts ctr-style id %j', (id) => {
    expect(validateLeaseId(id)).toBe(id);
  });

  it('refuses an empty id and control characters', async () => {
    await expectBerthError(() => validateLeaseId(''), 'INVALID_ARGUMENT', /lease id/);
    await expectBerthError(() => validateLeaseId('a\nb'), 'INVALID_ARGUMENT', /lease id/);
  });
});

describe('parseDigest', () => {
  it('splits a sha256 and a sha512 digest', () => {
    expect(parseDigest(`sha256:${HEX}`)).toEqual({ algorithm: 'sha256', hex: HEX });
    expect(parseDigest(`sha512:${'b'.repeat(128)}`)).toEqual({ algorithm: 'sha512', hex: 'b'.repeat(128) });
    expect(validateDigest(`sha256:${HEX}`)).toBe(`sha256:${HEX}`);
  });

  it.each([
    ['sha256:../..', /invalid sha256; expected 64 lowercase hex digits/],
    [`sha256:${HEX}/../x`, /invalid sha256/],
    [`sha256:${'a'.repeat(63)}`, /64 lowercase hex/],
    [`sha256:${'a'.repeat(65)}`, /64 lowercase hex/],
    [`sha256:${'A'.repeat(64)}`, /lowercase/],
    [`sha512:${HEX}`, /invalid sha512; expected 128/],
    [`md5:${'a'.repeat(32)}`, /unsupported algorithm "md5"/],
    [HEX, /expected "sha256:<64 hex digits>"/],
    [`:${HEX}`, /invalid/],
    ['', /invalid/],
  ])('refuses %j, naming the problem', async (digest, message) => {
    await expectBerthError(() => parseDigest(digest), 'INVALID_ARGUMENT', message);
  });

  it('quotes the offending digest, escaped, in the message', async () => {
    const err = await expectBerthError(() => parseDigest('sha256:\n..'), 'INVALID_ARGUMENT');
    expect(err.message).toContain('"sha256:\\n.."');
  });
});

describe('validateKey', () => {
  it('accepts opaque keys with spaces, slashes and colons', () => {
    for (const key of ['extract-1700000000-ab12 sha256:abc', 'docker.io/library/busybox:latest', '/tmp/mnt']) {
      expect(validateKey('snapshot key', key)).toBe(key);
    }
  });

  it.each(['a\u0000b', 'line\nbreak', 'tab\t', 'del\u007f', '\u001b[31m'])('refuses control characters in %j', async (key) => {
    await expectBerthError(() => validateKey('snapshot key', key), 'INVALID_ARGUMENT', /snapshot key .*control characters/);
  });

  it('refuses empty and overlong keys', async () => {
    await expectBerthError(() => validateKey('image name', ''), 'INVALID_ARGUMENT', /image name must not be empty/);
    await expectBerthError(() => validateKey('image name', 'k'.repeat(4097)), 'INVALID_ARGUMENT', /longer than 4096/);
  });

  it('clips a long key in the message', async () => {
    const err = await expectBerthError(() => validateKey('snapshot key', `${'k'.repeat(200)}\n`), 'INVALID_ARGUMENT');
    expect(err.message.length).toBeLessThan(200);
  });
});

describe('validateLabels', () => {
  it('copies labels and treats undefined as none', () => {
    expect(validateLabels({ a: '1' })).toEqual({ a: '1' });
    expect(validateLabels(undefined)).toEqual({});
  });

  it('refuses an empty key and an oversized label', async () => {
    await expectBerthError(() => validateLabels({ '': 'x' }), 'INVALID_ARGUMENT', /label key must not be empty/);
    await expectBerthError(() => validateLabels({ big: 'v'.repeat(4096) }), 'INVALID_ARGUMENT', /label "big"/);
  });
});

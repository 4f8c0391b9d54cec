import { describe, expect, it } from 'vitest';
import { formatReference, hostWithoutPort, parseReference } from '../../../services/registry/reference.js';

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['library/busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['user/app', 'docker.io/user/app:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b:v1', 'localhost:5000/a/b:v1'],
    ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest'],
    ['[::1]:5000/busybox:x', '[::1]:5000/busybox:x'],
    ['ghcr.io/o/r/deep/name:t_1.2-3', 'ghcr.io/o/r/deep/name:t_1.2-3'],
    [`quay.io/a/b@sha256:${'a'.repeat(64)}`, `quay.io/a/b@sha256:${'a'.repeat(64)}`],
    [`quay.io/a/b:v@sha256:${'b'.repeat(64)}`, `quay.io/a/b:v@sha256:${'b'.repeat(64)}`],
  ])('normalizes %s to %s', (input, want) => {
    expect(formatReference(parseReference(input))).toBe(want);
  });

  it('keeps a digest-only reference without a default tag', () => {
    const ref = parseReference(`r.io/x@sha256:${'c'.repeat(64)}`);
    expect(ref.tag).toBeUndefined();
    expect(ref.digest).toBe(`sha256:${'c'.repeat(64)}`);
  });

  it.each([
    ['', /must not be empty/],
    ['Busybox', /invalid repository component "Busybox"/],
    ['r.io/a//b', /invalid repository component ""/],
    ['r.io/a/b:bad tag', /invalid tag/],
    ['r.io/a/b@sha256:1234', /invalid sha256/],
    ['r.io/a/b@md5:abcd', /unsupported algorithm/],
    ['r.io/../etc', /invalid repository component "\.\."/],
    ['bad_host.io:x/a', /invalid registry host|invalid tag/],
  ])('refuses %j', (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
  });

  it('strips ports and brackets for the distribution.source label host', () => {
    expect(hostWithoutPort('127.0.0.1:5000')).toBe('127.0.0.1');
    expect(hostWithoutPort('[::1]:5000')).toBe('::1');
    expect(hostWithoutPort('docker.io')).toBe('docker.io');
  });
});

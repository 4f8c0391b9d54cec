import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../../services/registry/challenge.js';

describe('parseChallenges', () => {
  it('parses a Docker Hub bearer challenge', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });

  it('parses basic, token values, spaces and case', () => {
    expect(parseChallenges('BASIC Realm = "Registry Realm" , charset=UTF-8')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm', charset: 'UTF-8' } }]);
  });

  it('separates several challenges in one header', () => {
    const got = parseChallenges('Bearer realm="https://t/token",service="s", Basic realm="r"');
    expect(got.map((c) => c.scheme)).toEqual(['bearer', 'basic']);
    expect(got[1]?.params.realm).toBe('r');
  });

  it('unescapes quoted pairs and keeps commas inside quotes', () => {
    expect(parseChallenges('Bearer realm="a\\"b",scope="repository:x:pull,push"')[0]?.params).toEqual({ realm: 'a"b', scope: 'repository:x:pull,push' });
  });

  it('returns nothing for an empty or garbage header', () => {
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('=,,')).toEqual([]);
  });
});

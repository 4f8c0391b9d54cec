import { describe, expect, it } from 'vitest';
import { compileFilters, fieldsOf, type FieldGetter } from '../../../services/filters/filter.js';
import { expectBerthError } from './harness.js';

const obj = (fields: Record<string, string>, labels: Record<string, string> = {}): FieldGetter => fieldsOf(fields, labels);

const alpine = obj({ name: 'alpine', kind: 'active' }, { 'a.b': 'v', env: 'prod', 'x/y': 'q"z' });
const busybox = obj({ name: 'busybox', kind: 'committed' }, { env: 'dev', empty: '' });

const matchesOf = (filters: string[]): string[] => {
  const match = compileFilters(filters);
  return [
    ['alpine', alpine],
    ['busybox', busybox],
  ]
    .filter(([, get]) => match(get as FieldGetter))
    .map(([name]) => name as string);
};

describe('compileFilters', () => {
  it('matches everything when there are no filters or only empty ones', () => {
    expect(matchesOf([])).toEqual(['alpine', 'busybox']);
    expect(matchesOf(['', '  '])).toEqual(['alpine', 'busybox']);
  });

  it('== compares a top-level field', () => {
    expect(matchesOf(['name==alpine'])).toEqual(['alpine']);
    expect(matchesOf(['name==nothing'])).toEqual([]);
  });

  it('reads a quoted label key containing dots', () => {
    expect(matchesOf(['labels."a.b"==v'])).toEqual(['alpine']);
    expect(matchesOf(['labels."a.b"==w'])).toEqual([]);
  });

  it('a bare label path means present and non-empty', () => {
    expect(matchesOf(['labels.env'])).toEqual(['alpine', 'busybox']);
    expect(matchesOf(['labels."a.b"'])).toEqual(['alpine']);
    expect(matchesOf(['labels.empty'])).toEqual([]);
    expect(matchesOf(['labels.missing'])).toEqual([]);
  });

  it('!= excludes equal values and keeps objects without the field', () => {
    expect(matchesOf(['labels.env!=prod'])).toEqual(['busybox']);
    expect(matchesOf(['labels."a.b"!=v'])).toEqual(['busybox']);
  });

  it('~= matches a regular expression anywhere in the value', () => {
    expect(matchesOf(['name~=^b.*x$'])).toEqual(['busybox']);
    expect(matchesOf(['name~=pin'])).toEqual(['alpine']);
    expect(matchesOf(['labels.missing~=.*'])).toEqual([]);
  });

  it('~= takes a regular expression quoted with slashes, as containerd does', async () => {
    expect(matchesOf(['name~=/^b.*x$/'])).toEqual(['busybox']);
    expect(matchesOf(['name~=/pin/,kind==active'])).toEqual(['alpine']);
    const get = obj({ name: 'docker.io/library/x' });
    expect(compileFilters(['name~=/^docker\\.io\\/library\\//'])(get)).toBe(true);
    expect(compileFilters(['name~=/^quay\\.io\\//'])(get)).toBe(false);
    // Slashes only quote a regular expression; elsewhere they are part of the value.
    expect(compileFilters(['name==docker.io/library/x'])(get)).toBe(true);
    await expectBerthError(() => compileFilters(['name~=/^b']), 'INVALID_ARGUMENT', /unterminated/);
  });

  it(', joins selectors with AND', () => {
    expect(matchesOf(['labels.env==prod,name==alpine'])).toEqual(['alpine']);
    expect(matchesOf(['labels.env==prod,name==busybox'])).toEqual([]);
    expect(matchesOf(['labels.env==prod, kind==active'])).toEqual(['alpine']);
  });

  it('| joins alternatives with OR', () => {
    expect(matchesOf(['name==alpine|name==busybox'])).toEqual(['alpine', 'busybox']);
    expect(matchesOf(['name==nothing|labels.env==dev'])).toEqual(['busybox']);
  });

  it('AND binds tighter than OR', () => {
    expect(matchesOf(['name==busybox,labels.env==prod|name==alpine'])).toEqual(['alpine']);
  });

  it('several filter strings are ORed', () => {
    expect(matchesOf(['name==alpine', 'name==busybox'])).toEqual(['alpine', 'busybox']);
    expect(matchesOf(['name==nothing', 'kind==committed'])).toEqual(['busybox']);
  });

  it('quoted values keep separators and unescape \\" and \\\\', () => {
    const get = obj({ name: 'a,b|c d' }, { path: 'x\\y', quote: 'say "hi"' });
    expect(compileFilters(['name=="a,b|c d"'])(get)).toBe(true);
    expect(compileFilters(['labels.path=="x\\\\y"'])(get)).toBe(true);
    expect(compileFilters(['labels.quote=="say \\"hi\\""'])(get)).toBe(true);
    expect(compileFilters(['labels.quote=="say hi"'])(get)).toBe(false);
    expect(compileFilters(['labels."x/y"=="q\\"z"'])(alpine)).toBe(true);
  });

  it('refuses an unterminated quote with INVALID_ARGUMENT naming the problem', async () => {
    await expectBerthError(() => compileFilters(['name=="alpine']), 'INVALID_ARGUMENT', /unterminated quoted string/);
    await expectBerthError(() => compileFilters(['labels."a.b==v']), 'INVALID_ARGUMENT', /unterminated/);
  });

  it('refuses a bad regular expression when compiling, before any object is matched', async () => {
    const err = await expectBerthError(() => compileFilters(['name~=(unclosed']), 'INVALID_ARGUMENT', /regular expression/);
    expect(err.message).toContain('(unclosed');
  });

  it('refuses a bad regular expression even in an alternative no object reaches', async () => {
    await expectBerthError(() => compileFilters(['name==alpine|labels.x~=[z-a]']), 'INVALID_ARGUMENT', /regular expression/);
  });

  it('refuses other malformed filters with the filter text in the message', async () => {
    await expectBerthError(() => compileFilters(['name==']), 'INVALID_ARGUMENT', /filter "name==": expected a value/);
    await expectBerthError(() => compileFilters(['==x']), 'INVALID_ARGUMENT', /expected a field/);
    await expectBerthError(() => compileFilters(['name==a,']), 'INVALID_ARGUMENT', /expected a field/);
    await expectBerthError(() => compileFilters(['name=x']), 'INVALID_ARGUMENT', /unexpected "="/);
  });
});

describe('fieldsOf', () => {
  it('exposes top-level fields and labels.<key>, nothing deeper', () => {
    const get = obj({ name: 'n' }, { 'a.b': 'v' });
    expect(get(['name'])).toBe('n');
    expect(get(['labels', 'a', 'b'])).toBe('v');
    expect(get(['labels'])).toBeUndefined();
    expect(get(['name', 'x'])).toBeUndefined();
    expect(get([])).toBeUndefined();
  });
});

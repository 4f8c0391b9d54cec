import { invalidArgument } from '../errors.js';

/**
 * containerd's filter language: `field.path==value`, `!=`, `~=` (regular expression), a bare field
 * path meaning "present and non-empty"; `,` joins selectors with AND, `|` and separate filter
 * strings join with OR. Path parts and values may be double-quoted (`labels."a.b/c"==x`); a `~=`
 * value may also be quoted with slashes (`name~=/^docker\.io\//`), as containerd allows.
 */
export type FieldGetter = (path: string[]) => string | undefined;
export type Predicate = (get: FieldGetter) => boolean;

type Op = '==' | '!=' | '~=';

interface Selector {
  path: string[];
  op?: Op;
  value?: string;
}

const MATCH_ALL: Predicate = () => true;

/** Compiles the filters of a request; an empty list matches everything. */
export function compileFilters(filters: readonly string[] | undefined): Predicate {
  const nonEmpty = (filters ?? []).filter((f) => f.trim() !== '');
  if (nonEmpty.length === 0) return MATCH_ALL;
  const alternatives = nonEmpty.flatMap((f) => new Parser(f).parseAlternatives());
  return (get) => alternatives.some((conjunction) => conjunction.every((s) => matches(s, get)));
}

function matches(selector: Selector, get: FieldGetter): boolean {
  const actual = get(selector.path);
  if (selector.op === undefined) return actual !== undefined && actual !== '';
  const expected = selector.value ?? '';
  switch (selector.op) {
    case '==':
      return actual === expected;
    case '!=':
      return actual !== expected;
    case '~=':
      return actual !== undefined && compileRegex(expected).test(actual);
  }
}

const regexCache = new Map<string, RegExp>();

function compileRegex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    try {
      re = new RegExp(source);
    } catch (err) {
      throw invalidArgument(`filter: invalid regular expression "${source}": ${(err as Error).message}`);
    }
    regexCache.set(source, re);
  }
  return re;
}

class Parser {
  private pos = 0;

  constructor(private readonly input: string) {}

  parseAlternatives(): Selector[][] {
    const alternatives: Selector[][] = [this.parseConjunction()];
    while (this.peek() === '|') {
      this.pos++;
      alternatives.push(this.parseConjunction());
    }
    this.skipSpace();
    if (this.pos < this.input.length) this.fail(`unexpected "${this.input[this.pos]}"`);
    return alternatives;
  }

  private parseConjunction(): Selector[] {
    const selectors: Selector[] = [this.parseSelector()];
    while (this.peek() === ',') {
      this.pos++;
      selectors.push(this.parseSelector());
    }
    return selectors;
  }

  private parseSelector(): Selector {
    const path = [this.parseToken('field')];
    while (this.peek() === '.') {
      this.pos++;
      path.push(this.parseToken('field'));
    }
    this.skipSpace();
    const op = this.parseOp();
    if (!op) return { path };
    this.skipSpace();
    const value = op === '~=' && this.input[this.pos] === '/' ? this.parseSlashQuoted() : this.parseToken('value');
    // A bad expression is the request's fault whether or not any object reaches it.
    if (op === '~=') compileRegex(value);
    return { path, op, value };
  }

  private parseOp(): Op | undefined {
    for (const op of ['==', '!=', '~='] as const) {
      if (this.input.startsWith(op, this.pos)) {
        this.pos += 2;
        return op;
      }
    }
    return undefined;
  }

  private parseToken(what: 'field' | 'value'): string {
    this.skipSpace();
    if (this.input[this.pos] === '"') return this.parseQuoted();
    const stop = what === 'field' ? /[.,|=!~\s"]/ : /[,|\s]/;
    const start = this.pos;
    while (this.pos < this.input.length && !stop.test(this.input[this.pos] ?? '')) this.pos++;
    if (this.pos === start) this.fail(`expected a ${what}`);
    return this.input.slice(start, this.pos);
  }

  private parseQuoted(): string {
    let out = '';
    this.pos++;
    while (this.pos < this.input.length) {
      const ch = this.input[this.pos++];
      if (ch === '"') return out;
      if (ch === '\\' && this.pos < this.input.length) {
        const next = this.input[this.pos++] ?? '';
        out += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      } else {
        out += ch;
      }
    }
    return this.fail('unterminated quoted string');
  }

  /** containerd's `/regex/` quoting after `~=`: `\/` stands for a slash, other escapes stay for the regex. */
  private parseSlashQuoted(): string {
    let out = '';
    this.pos++;
    while (this.pos < this.input.length) {
      const ch = this.input[this.pos++];
      if (ch === '/') return out;
      if (ch === '\\' && this.pos < this.input.length) {
        const next = this.input[this.pos++] ?? '';
        out += next === '/' ? '/' : `\\${next}`;
      } else {
        out += ch;
      }
    }
    return this.fail('unterminated /regular expression/');
  }

  private peek(): string | undefined {
    this.skipSpace();
    return this.input[this.pos];
  }

  private skipSpace(): void {
    while (this.pos < this.input.length && /\s/.test(this.input[this.pos] ?? '')) this.pos++;
  }

  private fail(reason: string): never {
    throw invalidArgument(`filter "${this.input}": ${reason} at position ${this.pos}`);
  }
}

/** The field getter most objects need: top-level strings plus `labels.<key>`. */
export function fieldsOf(fields: Record<string, string | undefined>, labels: Record<string, string>): FieldGetter {
  return (path) => {
    const [head, ...rest] = path;
    if (head === undefined) return undefined;
    if (head === 'labels') return rest.length === 0 ? undefined : labels[rest.join('.')];
    return rest.length === 0 ? fields[head] : undefined;
  };
}

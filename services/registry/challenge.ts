/**
 * WWW-Authenticate parsing (RFC 7235): a header may carry several challenges, each a scheme
 * followed by comma-separated auth-params whose values are tokens or quoted strings.
 */
export interface Challenge {
  /** Lowercased: "bearer", "basic". */
  scheme: string;
  /** Parameter names lowercased: realm, service, scope, error. */
  params: Record<string, string>;
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /[ \t]/.test(this.text.charAt(this.pos))) this.pos++;
  }

  skipCommas(): void {
    for (;;) {
      this.skipSpace();
      if (this.text.charAt(this.pos) !== ',') return;
      this.pos++;
    }
  }

  token(): string | undefined {
    const m = TOKEN_RE.exec(this.text.slice(this.pos));
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  quoted(): string | undefined {
    if (this.text.charAt(this.pos) !== '"') return undefined;
    let out = '';
    for (this.pos++; this.pos < this.text.length; this.pos++) {
      const c = this.text.charAt(this.pos);
      if (c === '\\') out += this.text.charAt(++this.pos);
      else if (c === '"') {
        this.pos++;
        return out;
      } else out += c;
    }
    return out;
  }

  /** Looks ahead for `name=`; a bare token followed by anything else starts the next challenge. */
  param(): [string, string] | undefined {
    const start = this.pos;
    const name = this.token();
    this.skipSpace();
    if (name === undefined || this.text.charAt(this.pos) !== '=') {
      this.pos = start;
      return undefined;
    }
    this.pos++;
    this.skipSpace();
    const value = this.quoted() ?? this.token() ?? '';
    return [name.toLowerCase(), value];
  }
}

export function parseChallenges(header: string): Challenge[] {
  const cur = new Cursor(header);
  const out: Challenge[] = [];
  for (;;) {
    cur.skipCommas();
    const scheme = cur.token();
    if (scheme === undefined) return out;
    const params: Record<string, string> = {};
    for (;;) {
      cur.skipCommas();
      const param = cur.param();
      if (!param) break;
      params[param[0]] = param[1];
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
}

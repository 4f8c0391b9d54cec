import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { runOk } from '../../helpers/exec.js';

/**
 * A Docker token-auth server for tests: GET /token?service=&scope= with basic credentials
 * answers an ES256 JWT the registry verifies against the certificate in its rootcertbundle
 * (matched by libtrust key ID in the `kid` header).
 */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  requests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** libtrust's key ID: base32 of the first 240 bits of sha256(DER public key), in groups of 4. */
function libtrustKeyId(key: KeyObject): string {
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of hash) bits += byte.toString(2).padStart(8, '0');
  let s = '';
  for (let i = 0; i + 5 <= bits.length; i += 5) s += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return s.match(/.{1,4}/g)?.join(':') ?? s;
}

function jwt(key: KeyObject, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', kid: libtrustKeyId(key) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

/**
 * `grants` limits what a user's tokens allow (e.g. `{ carol: ['pull'] }`); a user without an
 * entry gets every action asked for.
 */
export async function startTokenServer(dir: string, users: Record<string, string>, grants: Record<string, readonly string[]> = {}): Promise<TokenServer> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=berth-test-token',
    '-days', '2', '-keyout', keyPath, '-out', certPath]);
  const key = createPrivateKey(await readFile(keyPath));
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://token');
    const auth = req.headers.authorization ?? '';
    const [user, pass] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString().split(':');
    if (!auth.startsWith('Basic ') || user === undefined || users[user] !== pass) {
      res.writeHead(401).end('{"details":"bad credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = url.searchParams.getAll('scope').map((scope) => {
      const [type, name, actions] = scope.split(':');
      const asked = (actions ?? '').split(',');
      const allowed = grants[user];
      return { type, name, actions: allowed ? asked.filter((a) => allowed.includes(a)) : asked };
    });
    const token = jwt(key, { iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

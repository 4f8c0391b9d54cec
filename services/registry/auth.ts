import { BerthError } from '../errors.js';
import { parseChallenges, type Challenge } from './challenge.js';
import type { CredentialSource, Credentials } from './credentials.js';
import type { RegistryEndpoint } from './hosts.js';
import { readBody, send } from './transport.js';

/**
 * Registry authorization (Docker token auth and basic): the first request goes anonymous or with
 * a cached token; a 401 names the scheme. Bearer tokens are fetched from the challenge's realm
 * (with basic credentials when we have them) and cached per host and scope until they expire.
 */
interface CachedToken {
  header: string;
  expiresAt: number;
}

interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
}

const DEFAULT_TOKEN_SECONDS = 60;
const TOKEN_RESPONSE_LIMIT = 1 << 20;

/** What a token may do with a repository: pulls ask for pull, pushes for pull and push. */
export type ScopeAction = 'pull' | 'push';

/** The token-auth scope of a repository, e.g. `repository:library/busybox:pull,push`. */
export function repositoryScope(path: string, actions: readonly ScopeAction[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

export class Authorizer {
  private readonly tokens = new Map<string, CachedToken>();
  /** Hosts that answered with a Basic challenge: send credentials up front from then on. */
  private readonly basicHosts = new Set<string>();

  constructor(
    private readonly credentials: CredentialSource,
    private readonly stallMs: number,
  ) {}

  /** The Authorization header to send to `host` for `scope`, if we already know one. */
  async header(host: string, scope: string): Promise<string | undefined> {
    const cached = this.tokens.get(cacheKey(host, scope));
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    if (this.basicHosts.has(host)) {
      const creds = await this.credentials(host);
      if (creds) return basicHeader(creds);
    }
    return undefined;
  }

  /**
   * Handles a 401 from `host` to a request that carried `sent` (its Authorization, if any):
   * afterwards header() has something new to send. Throws when the challenge cannot be met (no
   * credentials for basic, token endpoint refusing us, our current credentials refused).
   */
  async challenged(host: string, scope: string, wwwAuthenticate: string | undefined, endpoint: RegistryEndpoint, sent: string | undefined): Promise<void> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = await this.credentials(host);
    if (bearer) {
      await this.fetchToken(host, scope, bearer, creds, endpoint, sent);
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!creds) throw unauthenticated(`${host} requires a login (basic auth); add credentials for it to the docker config.json`);
      if (this.basicHosts.has(host) && sent === basicHeader(creds)) throw unauthenticated(`${host} refused the credentials for user "${creds.username}"`);
      // A request that went out before another one learnt the scheme simply retries with them.
      this.basicHosts.add(host);
      return;
    }
    throw unauthenticated(`${host} answered 401 without a supported challenge (${wwwAuthenticate ?? 'none'})`);
  }

  private async fetchToken(
    host: string,
    scope: string,
    challenge: Challenge,
    creds: Credentials | undefined,
    endpoint: RegistryEndpoint,
    sent: string | undefined,
  ): Promise<void> {
    const key = cacheKey(host, scope);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) {
      // Renewed by a concurrent request since this one went out: retry with the new token.
      if (cached.header !== sent) return;
      this.tokens.delete(key);
      const who = creds ? `user "${creds.username}"` : 'anonymous access';
      // The token server gave fewer rights than asked for (typically pull but not push).
      if (challenge.params.error === 'insufficient_scope') throw unauthenticated(`${host} denied ${scope} to ${who}: the token server's token does not grant it (insufficient_scope)`);
      throw unauthenticated(`${host} refused a fresh token for ${scope}${creds ? ` (user "${creds.username}")` : ' (anonymous)'}`);
    }
    const realm = challenge.params.realm;
    if (!realm) throw unauthenticated(`${host}: bearer challenge without a realm`);
    const url = new URL(realm);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw unauthenticated(`${host}: token realm ${realm} is not http(s)`);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set([scope, ...(challenge.params.scope ? [challenge.params.scope] : [])]);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (creds?.identityToken) {
      throw unauthenticated(`${host}: identity-token logins (OAuth refresh tokens) are not supported yet; use a password or access token`);
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (creds) headers.Authorization = basicHeader(creds);
    const res = await send({ method: 'GET', url, headers, endpoint, stallMs: this.stallMs });
    const body = await readBody(res, TOKEN_RESPONSE_LIMIT);
    if (res.status === 401 || res.status === 403) {
      throw unauthenticated(`token server ${url.origin} refused ${creds ? `user "${creds.username}"` : 'anonymous access'} for ${scope} (HTTP ${res.status})`);
    }
    if (res.status !== 200) throw new BerthError('UNAVAILABLE', `token server ${url.origin}: HTTP ${res.status} ${body.toString('utf8').slice(0, 200)}`);
    let parsed: TokenResponse;
    try {
      parsed = JSON.parse(body.toString('utf8')) as TokenResponse;
    } catch {
      throw new BerthError('FAILED_PRECONDITION', `token server ${url.origin}: response is not JSON`);
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new BerthError('FAILED_PRECONDITION', `token server ${url.origin}: response has no token`);
    const seconds = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a token does not expire between header() and the registry's check.
    this.tokens.set(key, { header: `Bearer ${token}`, expiresAt: Date.now() + seconds * 1000 * 0.9 });
  }
}

function cacheKey(host: string, scope: string): string {
  return `${host}\0${scope}`;
}

function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}`;
}

/** A registry that wants credentials we do not have, or refuses ours: retrying cannot help. */
function unauthenticated(message: string): BerthError {
  return new BerthError('UNAUTHENTICATED', message);
}

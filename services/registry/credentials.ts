import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';

/** What a registry login gives us for one host. */
export interface Credentials {
  username: string;
  secret: string;
  /** An identity token is a refresh token for the token endpoint, not a password. */
  identityToken?: boolean;
}

export type CredentialSource = (host: string) => Promise<Credentials | undefined>;

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** docker's config.json location: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** Docker Hub logins are stored under its legacy v1 URL. */
function candidateKeys(host: string): string[] {
  if (host === 'docker.io' || host === 'registry-1.docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  }
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
}

function fromEntry(path: string, key: string, entry: AuthEntry): Credentials | undefined {
  if (entry.identitytoken) return { username: entry.username ?? '', secret: entry.identitytoken, identityToken: true };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalidArgument(`${path}: auths["${key}"].auth is not base64 of "user:password"`);
    return { username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, secret: entry.password };
  return undefined;
}

/**
 * Credentials from a docker-style config.json, re-read on every lookup so a `docker login` made
 * while the daemon runs takes effect. A missing file means anonymous access. Credential helpers
 * (credsStore/credHelpers) are not run: berthd never executes programs named by a config file.
 */
export function dockerConfigCredentials(path: string): CredentialSource {
  return async (host) => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
    let auths: Record<string, AuthEntry>;
    try {
      auths = (JSON.parse(text) as { auths?: Record<string, AuthEntry> }).auths ?? {};
    } catch (err) {
      throw invalidArgument(`${path}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    for (const key of candidateKeys(host)) {
      const entry = auths[key];
      if (entry) return fromEntry(path, key, entry);
    }
    return undefined;
  };
}

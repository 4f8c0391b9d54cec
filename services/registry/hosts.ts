import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { invalidArgument } from '../errors.js';
import { DEFAULT_DOMAIN, hostWithoutPort } from './reference.js';

/**
 * Where to reach one registry, in containerd's `certs.d/<host>/hosts.toml` layout: mirrors in
 * file order, then the upstream `server`. Each endpoint says what it may be used for and how to
 * talk TLS to it.
 */
export type Capability = 'pull' | 'resolve' | 'push';

export interface RegistryEndpoint {
  /** Base URL of the API, ending in /v2 unless override_path says otherwise. */
  base: URL;
  capabilities: ReadonlySet<Capability>;
  /** PEM file paths of extra CAs. */
  ca: string[];
  skipVerify: boolean;
  /** [certificate, key] PEM file paths for TLS client authentication. */
  clientCerts: Array<[string, string]>;
  headers: Record<string, string>;
  /** https first, plain http if the TLS handshake fails: loopback registries without a scheme. */
  httpFallback: boolean;
}

export interface HostsOptions {
  /** The certs.d directory; no directory means defaults only. */
  hostsDir?: string;
  /** Force plain http for the registry (ctr --plain-http). */
  plainHttp?: boolean;
}

/** Where berthd (pull) and the berth CLI (push) look for `<host>/hosts.toml`. */
export const DEFAULT_HOSTS_DIR = '/etc/berth/certs.d';

const ALL: ReadonlySet<Capability> = new Set(['pull', 'resolve', 'push']);
const CAPABILITIES = new Set<string>(['pull', 'resolve', 'push']);

/** Registries on loopback get plain HTTP when TLS fails, as docker and ctr allow. */
export function isLoopback(domain: string): boolean {
  const host = hostWithoutPort(domain).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

function defaultServer(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'https://registry-1.docker.io' : `https://${domain}`;
}

function apiBase(url: string, overridePath: boolean): URL {
  const base = new URL(url);
  let path = base.pathname.replace(/\/+$/, '');
  if (!overridePath && !path.endsWith('/v2')) path += '/v2';
  base.pathname = path;
  return base;
}

interface HostSection {
  capabilities?: unknown;
  ca?: unknown;
  client?: unknown;
  skip_verify?: unknown;
  override_path?: unknown;
  header?: unknown;
}

function strings(file: string, key: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw invalidArgument(`${file}: "${key}" must be a string or a list of strings`);
}

function clientPairs(file: string, value: unknown, dir: string): Array<[string, string]> {
  if (value === undefined) return [];
  const list = Array.isArray(value) && Array.isArray(value[0]) ? (value as unknown[]) : [value];
  return list.map((entry) => {
    const pair = strings(file, 'client', entry).map((p) => resolvePath(dir, p));
    if (pair.length !== 2) throw invalidArgument(`${file}: "client" entries are [certificate, key] pairs`);
    return [pair[0] ?? '', pair[1] ?? ''];
  });
}

function resolvePath(dir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}

function endpoint(file: string, dir: string, url: string, section: HostSection, plainHttp: boolean | undefined): RegistryEndpoint {
  if (!/^https?:\/\//.test(url)) throw invalidArgument(`${file}: host "${url}" must be an http:// or https:// URL`);
  const capabilities = strings(file, 'capabilities', section.capabilities);
  for (const c of capabilities) if (!CAPABILITIES.has(c)) throw invalidArgument(`${file}: unknown capability "${c}"`);
  const headers: Record<string, string> = {};
  if (section.header !== undefined) {
    if (typeof section.header !== 'object' || section.header === null) throw invalidArgument(`${file}: "header" must be a table`);
    for (const [k, v] of Object.entries(section.header)) headers[k] = strings(file, `header.${k}`, v).join(', ');
  }
  const base = apiBase(url, section.override_path === true);
  if (plainHttp) base.protocol = 'http:';
  return {
    base,
    capabilities: capabilities.length > 0 ? new Set(capabilities as Capability[]) : ALL,
    ca: strings(file, 'ca', section.ca).map((p) => resolvePath(dir, p)),
    skipVerify: section.skip_verify === true,
    clientCerts: clientPairs(file, section.client, dir),
    headers,
    httpFallback: false,
  };
}

function defaultEndpoint(domain: string, plainHttp: boolean | undefined): RegistryEndpoint {
  const base = apiBase(defaultServer(domain), false);
  if (plainHttp) base.protocol = 'http:';
  return { base, capabilities: ALL, ca: [], skipVerify: false, clientCerts: [], headers: {}, httpFallback: !plainHttp && isLoopback(domain) };
}

/** certs.d names directories host:port; containerd also accepts _default for every host. */
async function readHostsFile(hostsDir: string, domain: string): Promise<{ file: string; dir: string; text: string } | undefined> {
  for (const name of [domain, '_default']) {
    const dir = join(hostsDir, name);
    const file = join(dir, 'hosts.toml');
    try {
      return { file, dir, text: await readFile(file, 'utf8') };
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Parses one hosts.toml; exported for tests. */
export function parseHostsToml(file: string, dir: string, text: string, domain: string, plainHttp?: boolean): RegistryEndpoint[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const hosts = (doc.host ?? {}) as Record<string, HostSection>;
  if (typeof hosts !== 'object') throw invalidArgument(`${file}: "host" must be a table of URLs`);
  const out = Object.entries(hosts).map(([url, section]) => endpoint(file, dir, url, section, plainHttp));
  const server = typeof doc.server === 'string' ? doc.server : defaultServer(domain);
  // The top-level keys configure the server itself, like a [host] section would.
  const serverEndpoint = endpoint(file, dir, server, doc as HostSection, plainHttp);
  if (typeof doc.server !== 'string' && isLoopback(domain) && !plainHttp) serverEndpoint.httpFallback = true;
  return [...out, serverEndpoint];
}

/** The endpoints to try for `domain`, best first. */
export async function registryEndpoints(domain: string, opts: HostsOptions = {}): Promise<RegistryEndpoint[]> {
  const found = opts.hostsDir ? await readHostsFile(opts.hostsDir, domain) : undefined;
  if (!found) return [defaultEndpoint(domain, opts.plainHttp)];
  return parseHostsToml(found.file, found.dir, found.text, domain, opts.plainHttp);
}

import { invalidArgument } from '../errors.js';
import { validateDigest } from '../validate.js';

/**
 * An image reference as the distribution project defines it: `[domain/]path[:tag][@digest]`,
 * normalized the way docker and containerd do (docker.io is the default domain, single-component
 * Docker Hub paths live under library/, a reference without tag or digest means :latest).
 */
export interface Reference {
  /** Registry host as written, with port: "docker.io", "127.0.0.1:5000", "[::1]:5000". */
  domain: string;
  /** Repository path inside the registry: "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^\w[\w.-]{0,127}$/;
const DOMAIN_RE = /^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/;
const PATH_MAX = 255;

/** The first component names a registry only if it looks like a host; "foo/bar" is a Hub path. */
function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

function fail(ref: string, why: string): never {
  throw invalidArgument(`image reference "${ref}": ${why}`);
}

export function parseReference(input: string): Reference {
  if (!input) fail(input, 'must not be empty');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      validateDigest(digest);
    } catch (err) {
      fail(input, err instanceof Error ? err.message : String(err));
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) fail(input, `invalid tag "${tag}"`);
  }
  const slash = rest.indexOf('/');
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  if (slash >= 0 && looksLikeDomain(rest.slice(0, slash))) {
    domain = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(domain)) fail(input, `invalid registry host "${domain}"`);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (!path) fail(input, 'missing repository name');
  if (path.length > PATH_MAX) fail(input, `repository name longer than ${PATH_MAX} characters`);
  for (const component of path.split('/')) {
    if (!COMPONENT_RE.test(component)) {
      fail(input, `invalid repository component "${component}"; use lowercase letters, digits and separators`);
    }
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The canonical string: what image records are named after. */
export function formatReference(ref: Reference): string {
  return `${ref.domain}/${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What the registry's manifest endpoint is asked for: the digest when pinned, else the tag. */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/**
 * The host without port or IPv6 brackets: the key of containerd's
 * `containerd.io/distribution.source.<host>` label, and what loopback checks look at.
 */
export function hostWithoutPort(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const colon = domain.lastIndexOf(':');
  return colon >= 0 ? domain.slice(0, colon) : domain;
}

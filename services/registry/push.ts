import { BerthError } from '../errors.js';
import { HttpStatusError, type RegistryClient } from './client.js';
import type { RegistryEndpoint } from './hosts.js';
import { isIndex, isManifest, MANIFEST_ACCEPT, parseIndex, parseManifest, verify, type Descriptor } from './manifest.js';
import { formatPlatform, type Platform } from './platform.js';
import { selectManifests } from './select.js';
import { NetworkError, type HttpResponse } from './transport.js';

/**
 * Image push (OCI distribution spec): every blob is checked with HEAD and, if the registry lacks
 * it, uploaded whole (POST for an upload URL, then one PUT with the digest); then the manifests,
 * an index's children by digest before the index itself under the tag. Content comes from a
 * PushSource, so the same code serves any store the bytes live in.
 */
export interface PushSource {
  /** Whether the store holds the blob: an index's other platforms are often not pulled. */
  has(digest: string): Promise<boolean>;
  /** A small blob (manifest, index) exactly as stored. */
  read(digest: string): Promise<Buffer>;
  /** A blob's bytes in order; opened again for every upload attempt. */
  open(digest: string): AsyncIterable<Buffer>;
}

export type PushKind = 'layer' | 'config' | 'manifest' | 'index';
export type PushStatus = 'pushed' | 'exists';

export interface PushProgress {
  kind: PushKind;
  descriptor: Descriptor;
  status: PushStatus;
}

/** One manifest (or index) to push with the blobs it needs; an index needs none of its own. */
export interface PlannedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  blobs: Array<{ kind: PushKind; descriptor: Descriptor }>;
}

export interface PushPlan {
  /** Children first; the last one is pushed under the reference's tag (or digest). */
  manifests: PlannedManifest[];
  /** Index entries left out because the store lacks them or their blobs. */
  skipped: Descriptor[];
}

export interface PlanOptions {
  /** Push only this platform's manifest of an index, under the tag (as ctr --platform does). */
  platform?: Platform;
  /** Refuse to push an index unless every manifest it lists is held locally. */
  allPlatforms?: boolean;
}

/** Blob uploads in flight at once: a few streams fill a link without hogging the registry. */
const UPLOAD_CONCURRENCY = 3;

const kindOf = (mediaType: string): PushKind => (isIndex(mediaType) ? 'index' : 'manifest');

async function readVerified(source: PushSource, desc: Descriptor): Promise<Buffer> {
  const bytes = await source.read(desc.digest);
  verify(`${desc.mediaType} ${desc.digest} in the local store`, bytes, desc);
  return bytes;
}

/** A manifest with its config and layers, or undefined if the store lacks any of them. */
async function planManifest(source: PushSource, desc: Descriptor): Promise<PlannedManifest | undefined> {
  if (!(await source.has(desc.digest))) return undefined;
  const bytes = await readVerified(source, desc);
  const manifest = parseManifest(`manifest ${desc.digest}`, bytes, desc.mediaType);
  const blobs = [{ kind: 'config' as const, descriptor: manifest.config }, ...manifest.layers.map((l) => ({ kind: 'layer' as const, descriptor: l }))];
  for (const blob of blobs) if (!(await source.has(blob.descriptor.digest))) return undefined;
  return { descriptor: desc, bytes, blobs };
}

function describe(desc: Descriptor): string {
  return `${desc.digest}${desc.platform ? ` (${formatPlatform(desc.platform)})` : ''}`;
}

async function requireManifest(source: PushSource, desc: Descriptor): Promise<PlannedManifest> {
  const planned = await planManifest(source, desc);
  if (!planned) throw new BerthError('NOT_FOUND', `manifest ${describe(desc)}: it or some of its blobs are not in the local content store`);
  return planned;
}

/**
 * What pushing `target` involves. An index is pushed as stored with the children the store
 * holds whole; those it lacks (platforms never pulled) are skipped, and the registry may then
 * refuse the index unless it already has them.
 */
export async function planPush(source: PushSource, target: Descriptor, opts: PlanOptions = {}): Promise<PushPlan> {
  if (!isIndex(target.mediaType)) return { manifests: [await requireManifest(source, target)], skipped: [] };
  const bytes = await readVerified(source, target);
  const index = parseIndex(`index ${target.digest}`, bytes, target.mediaType);
  if (opts.platform) {
    // selectManifests throws NOT_FOUND, naming the platforms there are, when none fits.
    const chosen = selectManifests(index, [opts.platform], false)[0];
    if (!chosen) throw new BerthError('NOT_FOUND', `index ${target.digest}: no manifest for ${formatPlatform(opts.platform)}`);
    return { manifests: [await requireManifest(source, chosen)], skipped: [] };
  }
  const children: PlannedManifest[] = [];
  const skipped: Descriptor[] = [];
  for (const desc of index.manifests) {
    const planned = isManifest(desc.mediaType) ? await planManifest(source, desc) : undefined;
    if (planned) children.push(planned);
    else skipped.push(desc);
  }
  if (opts.allPlatforms && skipped.length > 0) {
    throw new BerthError('FAILED_PRECONDITION', `index ${target.digest}: the local store lacks ${skipped.map(describe).join(', ')}; pull them (--all-platforms) or push one platform`);
  }
  if (children.length === 0) throw new BerthError('NOT_FOUND', `index ${target.digest}: none of its manifests is in the local content store`);
  return { manifests: [...children, { descriptor: target, bytes, blobs: [] }], skipped };
}

/** `{"errors":[{"code","message","detail"}]}`, the distribution spec's error body, as one line. */
function registryErrors(body: string): string | undefined {
  try {
    const doc = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> };
    const parts = (doc.errors ?? []).map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x).join(': '));
    return parts.length > 0 ? parts.join('; ') : undefined;
  } catch {
    return undefined;
  }
}

export class ImagePusher {
  private readonly endpoint: RegistryEndpoint;
  private readonly where: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly source: PushSource,
    private readonly onProgress: (p: PushProgress) => void = () => undefined,
  ) {
    // Multi-step uploads belong to one host; containerd pushes to its first push host as well.
    const [endpoint] = client.endpointsFor('push');
    if (!endpoint) throw new BerthError('FAILED_PRECONDITION', `no endpoint of ${client.ref.domain} may push`);
    this.endpoint = endpoint;
    this.where = `${client.ref.domain}/${client.ref.path}`;
  }

  /** Pushes the plan's blobs, then its manifests; the last one under `reference` (tag or digest). */
  async push(plan: PushPlan, reference: string): Promise<void> {
    const blobs = new Map<string, { kind: PushKind; descriptor: Descriptor }>();
    for (const m of plan.manifests) for (const b of m.blobs) blobs.set(b.descriptor.digest, b);
    await eachLimited([...blobs.values()], UPLOAD_CONCURRENCY, (b) => this.step(b.kind, b.descriptor, () => this.blob(b.descriptor)));
    for (const [i, m] of plan.manifests.entries()) {
      const ref = i === plan.manifests.length - 1 ? reference : m.descriptor.digest;
      await this.step(kindOf(m.descriptor.mediaType), m.descriptor, () => this.manifest(m, ref));
    }
  }

  /** Runs one push step, reports it, and names registry, repository and digest if it fails. */
  private async step(kind: PushKind, desc: Descriptor, run: () => Promise<PushStatus>): Promise<void> {
    let status: PushStatus;
    try {
      status = await run();
    } catch (err) {
      throw this.failure(kind, desc, err);
    }
    this.onProgress({ kind, descriptor: desc, status });
  }

  private async blob(desc: Descriptor): Promise<PushStatus> {
    if (await this.has(`blobs/${desc.digest}`, {}, desc.digest)) return 'exists';
    // A failed upload starts over with a new upload URL: a half-used one may be gone.
    await this.client.withRetries(() => this.upload(desc));
    return 'pushed';
  }

  private async upload(desc: Descriptor): Promise<void> {
    const started = await this.client.exchange(this.endpoint, {
      method: 'POST',
      target: 'blobs/uploads/',
      headers: { 'Content-Length': '0' },
      ok: [202],
      once: true,
    });
    started.body.resume();
    const location = started.headers.location;
    if (!location) throw new BerthError('FAILED_PRECONDITION', `POST ${started.url.href}: the registry gave no upload Location`);
    const url = new URL(location, started.url);
    // Appended by hand: re-encoding the registry's own query (its upload state) could alter it.
    url.search = `${url.search ? `${url.search}&` : '?'}digest=${encodeURIComponent(desc.digest)}`;
    const done = await this.client.exchange(this.endpoint, {
      method: 'PUT',
      target: url,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(desc.size) },
      body: () => localBytes(this.source, desc.digest),
      ok: [201],
      once: true,
    });
    done.body.resume();
  }

  private async manifest(m: PlannedManifest, reference: string): Promise<PushStatus> {
    if (await this.has(`manifests/${reference}`, { Accept: MANIFEST_ACCEPT }, m.descriptor.digest)) return 'exists';
    const res = await this.client.exchange(this.endpoint, {
      method: 'PUT',
      target: `manifests/${reference}`,
      headers: { 'Content-Type': m.descriptor.mediaType, 'Content-Length': String(m.bytes.length) },
      body: () => m.bytes,
      ok: [201],
    });
    res.body.resume();
    const stored = contentDigest(res);
    if (stored && stored !== m.descriptor.digest) {
      throw new BerthError('FAILED_PRECONDITION', `the registry stored the manifest as ${stored}, not as ${m.descriptor.digest}`);
    }
    return 'pushed';
  }

  /** HEAD: whether `path` exists and is `digest` (a tag may name another manifest). */
  private async has(path: string, headers: Record<string, string>, digest: string): Promise<boolean> {
    const res = await this.client.exchange(this.endpoint, { method: 'HEAD', target: path, headers, ok: [200, 404] });
    res.body.resume();
    if (res.status !== 200) return false;
    const served = contentDigest(res);
    // Without the header only a path naming the digest itself proves it; a tag may have moved.
    return served === undefined ? path.endsWith(`/${digest}`) : served === digest;
  }

  /**
   * The one error a failed push reports, saying where. Refusals keep their class (401/403 say
   * who was refused, 404 is NOT_FOUND); other HTTP errors are the registry rejecting the content
   * (FAILED_PRECONDITION) unless they are server or network trouble (UNAVAILABLE).
   */
  private failure(kind: PushKind, desc: Descriptor, err: unknown): BerthError {
    const what = `push ${kind} ${desc.digest} to ${this.where}`;
    if (err instanceof HttpStatusError) {
      const said = registryErrors(err.body) ?? err.body;
      const detail = `HTTP ${err.status}${said ? ` ${said}` : ''}`;
      if (err.status === 401 || err.status === 403) return new BerthError('UNAUTHENTICATED', `${what}: access denied (${detail})`);
      if (err.status === 404) return new BerthError('NOT_FOUND', `${what}: not found (${detail})`);
      const hint = kind === 'index' && err.body.includes('MANIFEST_BLOB_UNKNOWN') ? '; the registry lacks manifests this index lists and the local store does not hold them: pull with --all-platforms, or push one platform with --platform' : '';
      return new BerthError(err.code === 'UNAVAILABLE' ? 'UNAVAILABLE' : 'FAILED_PRECONDITION', `${what}: ${detail}${hint}`);
    }
    if (err instanceof NetworkError) return new BerthError('UNAVAILABLE', `${what}: ${err.message}`);
    if (err instanceof BerthError) return new BerthError(err.code, `${what}: ${err.message}`);
    return new BerthError('INTERNAL', `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function contentDigest(res: HttpResponse): string | undefined {
  const value = res.headers['docker-content-digest'];
  return typeof value === 'string' && value ? value : undefined;
}

/**
 * A blob's local bytes for an upload body. A failure to read them is ours, not the network's:
 * as a BerthError it ends the push instead of being retried as a broken connection.
 */
async function* localBytes(source: PushSource, digest: string): AsyncGenerator<Buffer> {
  try {
    yield* source.open(digest);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError('FAILED_PRECONDITION', `reading ${digest} from the local content store: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Runs `fn` over `items`, at most `limit` at a time. After a failure no new item starts, and the
 * first failure is thrown once the uploads in flight have ended.
 */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

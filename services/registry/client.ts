import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../errors.js';
import { repositoryScope, type Authorizer, type ScopeAction } from './auth.js';
import type { Capability, RegistryEndpoint } from './hosts.js';
import { isIndex, isManifest, MANIFEST_ACCEPT, MANIFEST_LIMIT, MEDIA, sha256, verify, type Descriptor } from './manifest.js';
import { formatReference, manifestReference, type Reference } from './reference.js';
import { isTlsFailure, NetworkError, readBody, send, type HttpMethod, type HttpResponse, type RequestBody } from './transport.js';

/**
 * One repository on one registry, reached through its endpoints (mirrors first). Every request
 * is authorized, retried on transient failures with exponential backoff, and falls back to the
 * next endpoint when one cannot serve it.
 */
export interface ClientOptions {
  /** No byte for this long aborts the attempt (and it is retried); not a total timeout. */
  stallMs: number;
  /** Attempts per request before giving up, across transient failures. */
  attempts: number;
  /** First backoff delay; doubles per attempt. */
  backoffMs: number;
  signal?: AbortSignal;
}

export const DEFAULT_CLIENT_OPTIONS: ClientOptions = { stallMs: 30_000, attempts: 5, backoffMs: 200 };
const MAX_BACKOFF_MS = 10_000;

export interface Resolved {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** HTTP statuses worth retrying: the registry or a proxy is overloaded or restarting. */
function transientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function isTransient(err: unknown): boolean {
  return err instanceof NetworkError || (err instanceof HttpStatusError && transientStatus(err.status));
}

export class HttpStatusError extends BerthError {
  constructor(
    readonly status: number,
    message: string,
    /** The start of the response body: registries explain refusals there (JSON `errors`). */
    readonly body = '',
  ) {
    super(status === 404 ? 'NOT_FOUND' : transientStatus(status) ? 'UNAVAILABLE' : 'FAILED_PRECONDITION', message);
  }
}

/** One HTTP exchange with an endpoint, as RegistryClient.exchange() sends it. */
export interface Exchange {
  method: HttpMethod;
  /** A path under the repository (`blobs/<digest>`), or an absolute URL the registry gave us. */
  target: string | URL;
  headers: Record<string, string>;
  body?: RequestBody;
  /** The statuses that answer the request; any other is an HttpStatusError. */
  ok: readonly number[];
  /** No retries here: a failure has to start over from an earlier step (an upload from its POST). */
  once?: boolean;
}

export class RegistryClient {
  private readonly scope: string;

  constructor(
    readonly ref: Reference,
    private readonly endpoints: RegistryEndpoint[],
    private readonly auth: Authorizer,
    readonly opts: ClientOptions,
    actions: readonly ScopeAction[] = ['pull'],
  ) {
    this.scope = repositoryScope(ref.path, actions);
  }

  /** Resolves the reference to the descriptor of its manifest or index, with its verified bytes. */
  async resolve(): Promise<Resolved> {
    const name = manifestReference(this.ref);
    let res: HttpResponse;
    try {
      res = await this.request('resolve', `manifests/${name}`, { Accept: MANIFEST_ACCEPT });
    } catch (err) {
      if (err instanceof HttpStatusError && err.status === 404) throw new BerthError('NOT_FOUND', `${formatReference(this.ref)}: not found (${err.message})`);
      throw err;
    }
    const bytes = await readBody(res, MANIFEST_LIMIT);
    const digest = sha256(bytes);
    if (this.ref.digest && digest !== this.ref.digest) {
      throw new BerthError('FAILED_PRECONDITION', `manifest ${this.ref.digest} from ${res.url.host}: content hashes to ${digest}`);
    }
    const served = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    let doc: { mediaType?: unknown };
    try {
      doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    } catch {
      throw new BerthError('FAILED_PRECONDITION', `${formatReference(this.ref)}: ${res.url.host} answered with something that is not a JSON manifest (${served || 'no content type'})`);
    }
    // OCI documents may omit mediaType; the Content-Type the registry served then says what it
    // is, and when that is generic too (application/json), the document's shape does.
    const mediaType = typeof doc?.mediaType === 'string' && doc.mediaType ? doc.mediaType : isIndex(served) || isManifest(served) ? served : shapeOf(doc, served);
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
  }

  /** A manifest, index or config by digest, read whole and verified. */
  async fetchSmall(desc: Descriptor): Promise<Buffer> {
    if (desc.size > MANIFEST_LIMIT) throw new BerthError('FAILED_PRECONDITION', `${desc.digest}: ${desc.size} bytes is too large for a manifest or config`);
    const kind = desc.mediaType.includes('manifest') || desc.mediaType.includes('index') ? 'manifests' : 'blobs';
    const res = await this.request('pull', `${kind}/${desc.digest}`, { Accept: kind === 'manifests' ? desc.mediaType : '*/*' });
    const bytes = await readBody(res, MANIFEST_LIMIT);
    verify(`${desc.mediaType} ${desc.digest} from ${res.url.host}`, bytes, desc);
    return bytes;
  }

  /**
   * Opens a blob at `offset`. A server that ignores Range answers 200 with the whole blob; the
   * caller then skips `skip` bytes, so what it keeps always starts at `offset`.
   */
  async openBlob(desc: Descriptor, offset: number): Promise<{ body: IncomingMessage; skip: number }> {
    const headers: Record<string, string> = { Accept: '*/*' };
    if (offset > 0) headers.Range = `bytes=${offset}-`;
    const res = await this.request('pull', `blobs/${desc.digest}`, headers);
    if (offset > 0 && res.status === 200) return { body: res.body, skip: offset };
    if (offset > 0 && res.status === 206) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
      if (Number(start) !== offset) {
        res.body.destroy();
        throw new HttpStatusError(502, `blob ${desc.digest} from ${res.url.host}: asked for bytes from ${offset}, got ${String(res.headers['content-range'])}`);
      }
    }
    return { body: res.body, skip: 0 };
  }

  /** One logical GET: endpoints in order, each retried with backoff on transient failures. */
  private async request(capability: Capability, path: string, headers: Record<string, string>): Promise<HttpResponse> {
    let last: unknown;
    for (const endpoint of this.endpointsFor(capability)) {
      try {
        return await this.exchange(endpoint, { method: 'GET', target: path, headers, ok: [200, 206] });
      } catch (err) {
        last = err;
        // A mirror that lacks the content or is unreachable defers to the next endpoint.
        if (!(err instanceof HttpStatusError || err instanceof NetworkError)) throw err;
      }
    }
    throw last;
  }

  async withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || attempt >= this.opts.attempts || this.opts.signal?.aborted) throw err;
        const delay = Math.min(this.opts.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
        await sleep(delay * (0.5 + Math.random() / 2), undefined, this.opts.signal ? { signal: this.opts.signal } : {});
      }
    }
  }

  /** The endpoints that may `capability`, best first; push uses the first, as containerd does. */
  endpointsFor(capability: Capability): RegistryEndpoint[] {
    const candidates = this.endpoints.filter((e) => e.capabilities.has(capability));
    if (candidates.length === 0) throw new BerthError('FAILED_PRECONDITION', `no endpoint of ${this.ref.domain} may ${capability}`);
    return candidates;
  }

  /** One exchange with `endpoint`, retried with backoff on transient failures unless `once`. */
  exchange(endpoint: RegistryEndpoint, req: Exchange): Promise<HttpResponse> {
    return req.once ? this.attempt(endpoint, req) : this.withRetries(() => this.attempt(endpoint, req));
  }

  /** One HTTP exchange, answering at most one auth challenge and one TLS-to-HTTP fallback. */
  private async attempt(endpoint: RegistryEndpoint, req: Exchange): Promise<HttpResponse> {
    const authHost = endpoint.base.host;
    for (let round = 0; round < 3; round++) {
      const url = this.urlOf(endpoint, req.target);
      // An upload URL on another host gets no credentials, like a redirect there would not.
      const ours = url.host === authHost;
      const auth = ours ? await this.auth.header(authHost, this.scope) : undefined;
      const all = { ...endpoint.headers, ...req.headers, ...(auth ? { Authorization: auth } : {}) };
      let res: HttpResponse;
      try {
        res = await send({
          method: req.method,
          url,
          headers: all,
          endpoint,
          stallMs: this.opts.stallMs,
          ...(req.body ? { body: req.body } : {}),
          ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        });
      } catch (err) {
        if (endpoint.httpFallback && typeof req.target === 'string' && url.protocol === 'https:' && isTlsFailure(err)) {
          endpoint.base.protocol = 'http:';
          continue;
        }
        throw err;
      }
      if (res.status === 401 && ours) {
        const challenge = res.headers['www-authenticate'];
        res.body.resume();
        await this.auth.challenged(authHost, this.scope, challenge, endpoint, auth);
        continue;
      }
      if (req.ok.includes(res.status)) return res;
      const body = (await readBody(res, 64 << 10).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 300).trim();
      throw new HttpStatusError(res.status, `${req.method} ${res.url.href}: HTTP ${res.status}${body ? ` ${body}` : ''}`, body);
    }
    throw new BerthError('FAILED_PRECONDITION', `${authHost}: authorization kept failing for ${this.scope}`);
  }

  /** A path is relative to the repository on this endpoint; a URL (an upload's) is used as is. */
  private urlOf(endpoint: RegistryEndpoint, target: string | URL): URL {
    if (target instanceof URL) return new URL(target.href);
    const url = new URL(endpoint.base.href);
    url.pathname = `${endpoint.base.pathname}/${this.ref.path}/${target}`;
    return url;
  }
}

function shapeOf(doc: object | null, served: string): string {
  if (doc && 'manifests' in doc) return MEDIA.ociIndex;
  if (doc && 'layers' in doc && 'config' in doc) return MEDIA.ociManifest;
  return served;
}

import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors.js';
import type { RegistryEndpoint } from './hosts.js';

/**
 * HTTP for the registry client, on node:http(s) rather than the global fetch: we need per-host
 * TLS settings (extra CAs, skip-verify, client certificates) without a dependency on undici's
 * unexported Agent, redirects followed by hand so Authorization is dropped when the host
 * changes, and an idle-socket deadline instead of a total timeout, which node:http gives
 * directly (socket inactivity timer) while fetch only offers an overall AbortSignal.
 */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The final URL after redirects. */
  url: URL;
  body: IncomingMessage;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT';

/**
 * A request body, made afresh for every send: a retry, a redirect or an answered auth challenge
 * sends the whole body again, and a stream can only be read once.
 */
export type RequestBody = () => Buffer | AsyncIterable<Buffer>;

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body?: RequestBody;
  endpoint: Pick<RegistryEndpoint, 'ca' | 'skipVerify' | 'clientCerts'>;
  /** Abort when no byte arrives for this long, headers and body alike. */
  stallMs: number;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 10;
const agents = new Map<string, HttpsAgent>();
const plainAgent = new HttpAgent({ keepAlive: true, maxSockets: 32 });

function httpsAgent(tls: HttpRequest['endpoint']): HttpsAgent {
  const key = JSON.stringify([tls.ca, tls.skipVerify, tls.clientCerts]);
  let agent = agents.get(key);
  if (!agent) {
    const [client] = tls.clientCerts;
    agent = new HttpsAgent({
      keepAlive: true,
      maxSockets: 32,
      rejectUnauthorized: !tls.skipVerify,
      ...(tls.ca.length > 0 ? { ca: tls.ca.map((p) => readFileSync(p)) } : {}),
      ...(client ? { cert: readFileSync(client[0]), key: readFileSync(client[1]) } : {}),
    });
    agents.set(key, agent);
  }
  return agent;
}

/** A transport-level failure (no HTTP status): connection refused or reset, TLS, stall. */
export class NetworkError extends BerthError {
  constructor(
    message: string,
    readonly errno: string | undefined,
  ) {
    super('UNAVAILABLE', message);
  }
}

function once(req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    const r = send(url, { method: req.method, headers, agent: https ? httpsAgent(req.endpoint) : plainAgent, signal: req.signal }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    r.setTimeout(req.stallMs, () => r.destroy(new NetworkError(`${req.method} ${url.href}: no data for ${req.stallMs} ms`, 'ESTALL')));
    r.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof BerthError) reject(err);
      else if (req.signal?.aborted) reject(new BerthError('CANCELLED', `${req.method} ${url.href}: cancelled`));
      else reject(new NetworkError(`${req.method} ${url.href}: ${err.message}`, err.code));
    });
    if (req.body) writeBody(r, req.body());
    else r.end();
  });
}

/**
 * Streams a body with backpressure. A failing source (a BerthError from whoever produces the
 * bytes) destroys the request with that error, so it is reported as is rather than as a network
 * failure; an answer that comes before the body is complete (a refusal) wins either way.
 */
function writeBody(r: ClientRequest, body: Buffer | AsyncIterable<Buffer>): void {
  if (Buffer.isBuffer(body)) {
    r.end(body);
    return;
  }
  pipeline(Readable.from(body, { objectMode: false }), r).catch((err: unknown) => {
    if (!r.destroyed) r.destroy(err instanceof Error ? err : new Error(String(err)));
  });
}

/**
 * Sends one request and follows redirects. Registries redirect blob GETs to object storage with
 * pre-signed URLs: the Authorization header (and every other credential-bearing header) goes
 * only to the origin it was made for, never to a host the redirect names.
 */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  let url = req.url;
  let headers = req.headers;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await once(req, url, headers);
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
    res.body.resume();
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new BerthError('FAILED_PRECONDITION', `${url.href} redirected to unsupported URL ${next.href}`);
    }
    if (next.origin !== url.origin) headers = withoutCredentials(headers);
    url = next;
  }
  throw new BerthError('FAILED_PRECONDITION', `${req.url.href}: more than ${MAX_REDIRECTS} redirects`);
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (key !== 'authorization' && key !== 'cookie' && key !== 'proxy-authorization') out[k] = v;
  }
  return out;
}

/** Reads a small body (manifests, token responses) with a size cap. */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new BerthError('FAILED_PRECONDITION', `${res.url.href}: response larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Errors from TLS handshakes against a plain-HTTP server: the cue for loopback http fallback. */
export function isTlsFailure(err: unknown): boolean {
  if (!(err instanceof NetworkError)) return false;
  return err.errno === 'EPROTO' || err.errno === 'ECONNRESET' || (err.errno ?? '').startsWith('ERR_SSL');
}

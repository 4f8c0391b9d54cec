import { createServer, request, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A failure-injection HTTP proxy in front of a registry, on its own 127.0.0.x address. It
 * records every request and can, per request, cut or stall a response body, flip a byte, ignore
 * Range, change the Content-Type, redirect elsewhere, or demand basic credentials.
 */
export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export type Fault =
  | { kind: 'cut'; after: number }
  | { kind: 'stall'; after: number; onStall?: () => void }
  | { kind: 'corrupt'; at: number }
  | { kind: 'ignore-range' }
  | { kind: 'content-type'; value: string }
  | { kind: 'redirect'; to: string };

export interface ProxyOptions {
  ip: string;
  upstream: string;
  /** `nth` counts requests for the same path, from 1. */
  fault?: (req: SeenRequest, nth: number) => Fault | undefined;
  /** "user:password" every request must carry as basic auth. */
  requireBasic?: string;
}

export interface Proxy {
  host: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

function pipeWithFault(upstream: NodeJS.ReadableStream, res: ServerResponse, fault: Fault | undefined, socket: Socket): void {
  let sent = 0;
  upstream.on('data', (chunk: Buffer) => {
    let out = chunk;
    if (fault?.kind === 'corrupt' && fault.at >= sent && fault.at < sent + chunk.length) {
      out = Buffer.from(chunk);
      out[fault.at - sent] = (out[fault.at - sent] ?? 0) ^ 0xff;
    }
    if ((fault?.kind === 'cut' || fault?.kind === 'stall') && sent + out.length >= fault.after) {
      upstream.removeAllListeners('data');
      // A FIN after the bytes are flushed: the client gets exactly `after` bytes, then EOF.
      res.write(out.subarray(0, fault.after - sent), () => (fault.kind === 'cut' ? socket.end() : fault.onStall?.()));
      sent = fault.after;
      return;
    }
    sent += out.length;
    res.write(out);
  });
  upstream.on('end', () => {
    if (fault?.kind !== 'cut' && fault?.kind !== 'stall') res.end();
  });
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const requests: SeenRequest[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const seen = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(seen);
    const nth = (counts.get(seen.path) ?? 0) + 1;
    counts.set(seen.path, nth);
    if (opts.requireBasic && req.headers.authorization !== `Basic ${Buffer.from(opts.requireBasic).toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="berth-proxy"' }).end();
      return;
    }
    const fault = opts.fault?.(seen, nth);
    if (fault?.kind === 'redirect') {
      res.writeHead(307, { Location: `http://${fault.to}${seen.path}` }).end();
      return;
    }
    const headers = { ...req.headers, host: opts.upstream };
    delete headers.authorization;
    if (fault?.kind === 'ignore-range') delete headers.range;
    const [host, port] = opts.upstream.split(':');
    const up = request({ host, port: Number(port), method: req.method, path: req.url, headers }, (upRes) => {
      const type = fault?.kind === 'content-type' ? { 'content-type': fault.value } : {};
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, ...type });
      pipeWithFault(upRes, res, fault, req.socket);
    });
    up.on('error', () => res.destroy());
    up.end();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, opts.ip, resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `${opts.ip}:${port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The registry path of a blob. */
export const blobPath = (repo: string, digest: string): string => `/v2/${repo}/blobs/${digest}`;

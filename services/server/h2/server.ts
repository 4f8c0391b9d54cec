/**
 * berthd's gRPC server: HTTP/2 straight on node:net unix-socket connections (no node:http2, no
 * grpc-js), routing `/pkg.Service/Method` to GrpcMethods. See connection.ts for HTTP/2 and
 * call.ts for the gRPC call.
 */
import net from 'node:net';
import type { Logger } from '../../log.js';
import { listenUnix } from '../listen.js';
import { GrpcCall, type CallMetadata, type GrpcMethod } from './call.js';
import { Connection, CONNECTION_OPTIONS, type RequestHandler } from './connection.js';
import type { H2Stream } from './stream.js';
import { Code } from '../../codes.js';
import { isGrpcContentType, parseTimeout, trailersOnly } from './status.js';

export class GrpcServer implements RequestHandler {
  private listener: net.Server | undefined;
  private readonly connections = new Set<Connection>();
  private readonly allClosed: (() => void)[] = [];

  constructor(
    private readonly methods: ReadonlyMap<string, GrpcMethod>,
    private readonly log: Logger,
  ) {}

  /** Listens on a unix socket path (the caller removes a stale socket first). */
  async listen(path: string): Promise<void> {
    const listener = await listenUnix(path, (socket) => this.accept(socket));
    this.listener = listener;
    listener.on('error', (err) => this.log.error('gRPC listener error', { error: err.message }));
  }

  /** Serves one connected socket (the listener's, or a test's). */
  accept(socket: net.Socket): Connection {
    const conn = new Connection(socket, this, this.log, CONNECTION_OPTIONS, (c) => {
      this.connections.delete(c);
      if (this.connections.size === 0) for (const done of this.allClosed.splice(0)) done();
    });
    this.connections.add(conn);
    return conn;
  }

  /**
   * Stops accepting connections, sends GOAWAY on each (open calls may finish), and after graceMs
   * cuts what is left. Resolves true if every call finished in time.
   */
  async shutdown(graceMs: number): Promise<boolean> {
    const listener = this.listener;
    const closed = listener ? new Promise<void>((resolve) => listener.close(() => resolve())) : Promise.resolve();
    const drained = new Promise<void>((resolve) => {
      if (this.connections.size === 0) resolve();
      else this.allClosed.push(resolve);
    });
    for (const conn of this.connections) conn.goaway();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const graceful = (await Promise.race([drained, timeout])) !== 'timeout';
    clearTimeout(timer);
    if (!graceful) for (const conn of this.connections) conn.destroy();
    await drained;
    await closed;
    return graceful;
  }

  onRequest(stream: H2Stream, headers: string[], listSize: number): void {
    let method = '';
    let path = '';
    let contentType = '';
    let timeout: string | undefined;
    let metadata: Map<string, string | Buffer> | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      if (name.charCodeAt(0) === 0x3a /* : */) {
        if (name === ':path') path = value;
        else if (name === ':method') method = value;
        // :authority and :scheme are not checked: CRI clients send the socket path as
        // :authority (api.md §6.2), which node:http2 refused.
        continue;
      }
      if (name === 'content-type') contentType = value;
      else if (name === 'grpc-timeout') timeout = value;
      else if (name === 'te' || name.startsWith('grpc-')) continue;
      else {
        metadata ??= new Map();
        if (!metadata.has(name)) metadata.set(name, name.endsWith('-bin') ? Buffer.from(value.split(',')[0] as string, 'base64') : value);
      }
    }
    if (listSize > CONNECTION_OPTIONS.maxHeaderListSize) {
      return refuse(stream, Code.RESOURCE_EXHAUSTED, `request headers of ${listSize} bytes exceed ${CONNECTION_OPTIONS.maxHeaderListSize}`);
    }
    if (method !== 'POST') return refuse(stream, Code.INTERNAL, `HTTP method ${method} is not POST`, 405);
    if (!isGrpcContentType(contentType)) return refuse(stream, Code.INTERNAL, `content-type "${contentType}" is not gRPC's`, 415);
    const target = this.methods.get(path);
    if (target === undefined) return refuse(stream, Code.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    let timeoutMs: number | undefined;
    if (timeout !== undefined) {
      timeoutMs = parseTimeout(timeout);
      if (timeoutMs === undefined) return refuse(stream, Code.INTERNAL, `malformed grpc-timeout "${timeout}"`);
    }
    const call = new GrpcCall(stream, target, metadata ?? NO_METADATA, timeoutMs);
    if (target.requestStream) call.startStreaming();
  }
}

const NO_METADATA: CallMetadata = new Map();

function refuse(stream: H2Stream, code: number, message: string, httpStatus = 200): void {
  stream.end(trailersOnly(code, message, httpStatus));
}

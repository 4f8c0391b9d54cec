import { chmodSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import type protobuf from 'protobufjs';
import { listenUnix } from '../server/listen.js';
import { decodeMessage, encodeMessage, protoRoot } from '../server/protos.js';
import { decodeRequest, encodeResponse, NAMESPACE_KEY, type Metadata } from './envelope.js';
import { encodeFrame, FrameDecoder, FrameType, type Frame } from './frame.js';
import { Code, statusOf, TtrpcError, type RpcStatus } from './status.js';

// Sent explicitly (not omitted) on success: Go's ttrpc client accepts both, older ones only this.
const OK: RpcStatus = { code: Code.OK, message: '' };

export interface CallContext {
  service: string;
  method: string;
  metadata: Metadata;
  /** The containerd namespace from `containerd-namespace-ttrpc`, if the caller sent one. */
  namespace: string | undefined;
  /** Epoch milliseconds after which the caller has given up; undefined = no deadline. */
  deadline: number | undefined;
  /** Aborted when the deadline passes or the connection closes. */
  signal: AbortSignal;
}

/**
 * A method implementation. The request parameter is typed `never` here so that handlers can
 * declare the exact request shape they expect (the decoded protobuf object, snake_case fields).
 */
export type MethodHandler = (request: never, ctx: CallContext) => Promise<object | void> | object | void;
export type ServiceHandlers = Record<string, MethodHandler>;

interface Method {
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  handler: MethodHandler;
}

/** Serves registered services on unix socket connections; every request runs concurrently. */
export class TtrpcServer {
  private readonly methods = new Map<string, Method>();
  private readonly connections = new Set<net.Socket>();
  private listener: net.Server | undefined;

  /** Registers handlers for methods of a service defined in proto/ (e.g. containerd.task.v2.Task). */
  register(serviceName: string, handlers: ServiceHandlers): void {
    const service = protoRoot().lookupService(serviceName);
    for (const [name, handler] of Object.entries(handlers)) {
      const method = service.methods[name];
      if (!method) throw new Error(`${serviceName} has no method ${name}`);
      method.resolve();
      const { resolvedRequestType: requestType, resolvedResponseType: responseType } = method;
      if (!requestType || !responseType) throw new Error(`unresolved types for ${serviceName}/${name}`);
      this.methods.set(`${serviceName}/${name}`, { requestType, responseType, handler });
    }
  }

  /** Listens on a socket file (mode 0600), replacing a stale one left by a dead process. */
  async listen(path: string): Promise<void> {
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.listener = await listenUnix(path, (socket) => this.serve(socket));
    chmodSync(path, 0o600);
  }

  /** Serves one already-connected socket (also used for tests and socket activation). */
  serve(socket: net.Socket): void {
    this.connections.add(socket);
    const decoder = new FrameDecoder();
    const inflight = new Set<AbortController>();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) this.onFrame(socket, frame, inflight);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.connections.delete(socket);
      for (const call of inflight) call.abort(new TtrpcError(Code.CANCELLED, 'connection closed'));
    });
  }

  /**
   * Stops accepting connections and removes the socket file, synchronously, while open
   * connections keep being served (so an answer already being sent still goes out).
   */
  stopListening(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    if (!listener) return Promise.resolve();
    return new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await this.stopListening();
  }

  private onFrame(socket: net.Socket, frame: Frame, inflight: Set<AbortController>): void {
    // Responses and stream data frames are not requests; ttrpc servers ignore them too.
    if (frame.type !== FrameType.Request) return;
    if (frame.oversized !== undefined) {
      const message = `message of ${frame.oversized} bytes exceeds the limit`;
      respond(socket, frame.streamId, { code: Code.RESOURCE_EXHAUSTED, message });
      return;
    }
    const controller = new AbortController();
    inflight.add(controller);
    void this.handle(socket, frame, controller).finally(() => inflight.delete(controller));
  }

  private async handle(socket: net.Socket, frame: Frame, controller: AbortController): Promise<void> {
    let done = false;
    const finish = (status: RpcStatus | undefined, payload?: Buffer): void => {
      if (done) return;
      done = true;
      respond(socket, frame.streamId, status, payload);
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const req = decodeRequest(frame.payload);
      const method = this.methods.get(`${req.service}/${req.method}`);
      if (!method) {
        const known = [...this.methods.keys()].some((k) => k.startsWith(`${req.service}/`));
        const what = known ? `method ${req.method}` : `service ${req.service}`;
        throw new TtrpcError(Code.UNIMPLEMENTED, `${what}: not implemented`);
      }
      const timeoutMs = req.timeoutNano > 0 ? Math.ceil(req.timeoutNano / 1e6) : undefined;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          controller.abort(new TtrpcError(Code.DEADLINE_EXCEEDED, 'context deadline exceeded'));
          finish({ code: Code.DEADLINE_EXCEEDED, message: 'context deadline exceeded' });
        }, timeoutMs);
      }
      const ctx: CallContext = {
        service: req.service,
        method: req.method,
        metadata: req.metadata,
        namespace: req.metadata[NAMESPACE_KEY]?.[0],
        deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
        signal: controller.signal,
      };
      const request = decodeMessage(method.requestType, req.payload);
      const result = await method.handler(request as never, ctx);
      finish(OK, encodeMessage(method.responseType, result ?? {}));
    } catch (err) {
      finish(statusOf(err));
    } finally {
      clearTimeout(timer);
    }
  }
}

function respond(socket: net.Socket, streamId: number, status: RpcStatus | undefined, payload?: Buffer): void {
  if (socket.destroyed) return;
  let body: Buffer;
  try {
    body = encodeResponse({ status, payload: payload ?? Buffer.alloc(0) });
    socket.write(encodeFrame(streamId, FrameType.Response, body));
  } catch (err) {
    // Only an over-limit response gets here; the caller must still get an answer.
    const refused = { code: Code.RESOURCE_EXHAUSTED, message: statusOf(err).message };
    body = encodeResponse({ status: refused, payload: Buffer.alloc(0) });
    socket.write(encodeFrame(streamId, FrameType.Response, body));
  }
}

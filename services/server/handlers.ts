import {
  Metadata,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerDuplexStream,
  type ServerWritableStream,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { BerthError, toBerthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Message } from './protos.js';
import { contextFromCallMetadata, contextFromMetadata, type CallContext } from './context.js';
import type { GrpcCall, GrpcMethod } from './h2/call.js';
import { Status } from './h2/status.js';

/**
 * The in-process services' side of gRPC: handlers take decoded messages and a CallContext (the
 * namespace and lease headers, parsed and validated), and every thrown value becomes a gRPC
 * status, logged once. The kit only describes handlers; the server that runs them adapts them:
 * grpcJsImplementation() for grpc-js, h2Start() for berthd's own HTTP/2 server (server/h2).
 */
export type Unary = (req: Message, ctx: CallContext) => Promise<Message> | Message;
export type ServerStream = (req: Message, ctx: CallContext, send: (msg: Message) => Promise<void>) => Promise<void>;

/**
 * A bidirectional call as its handler sees it: the client's messages by async iteration, and
 * send(), which resolves once the message is on its way (back-pressure). The call ends when the
 * handler returns (OK) or throws (that error's status); leaving the loop early does not cancel it.
 */
export interface BidiCall extends AsyncIterable<Message> {
  send(msg: Message): Promise<void>;
}
export type BidiStream = (call: BidiCall, ctx: CallContext) => Promise<void>;

/** A failure as the status it is sent as. */
export interface CallStatus {
  code: number;
  message: string;
}

interface HandlerBase {
  /** "Service/Method", for logs. */
  readonly name: string;
  readonly log: Logger;
  /** Maps a thrown value to its status and logs it. */
  readonly fail: (err: unknown) => CallStatus;
}

export type MethodHandler =
  | (HandlerBase & { readonly kind: 'unary'; readonly fn: Unary })
  | (HandlerBase & { readonly kind: 'serverStream'; readonly fn: ServerStream })
  | (HandlerBase & { readonly kind: 'bidi'; readonly fn: BidiStream });

/** A service's methods by their protobuf names. */
export type ServiceImpl = Record<string, MethodHandler>;

export interface HandlerKit {
  unary(name: string, fn: Unary): MethodHandler;
  serverStream(name: string, fn: ServerStream): MethodHandler;
  bidi(name: string, fn: BidiStream): MethodHandler;
}

export function handlerKit(log: Logger): HandlerKit {
  const failFor =
    (name: string) =>
    (err: unknown): CallStatus => {
      const berr = toBerthError(err);
      (berr.code === 'INTERNAL' ? log.error : log.debug)('call failed', { method: name, code: berr.grpcCode, error: berr.message });
      return { code: berr.grpcCode, message: berr.message };
    };
  return {
    unary: (name, fn) => ({ kind: 'unary', name, fn, log, fail: failFor(name) }),
    serverStream: (name, fn) => ({ kind: 'serverStream', name, fn, log, fail: failFor(name) }),
    bidi: (name, fn) => ({ kind: 'bidi', name, fn, log, fail: failFor(name) }),
  };
}

// ---- berthd's HTTP/2 server (server/h2) ----

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Runs a handler for calls of the h2 server. */
export function h2Start(handler: MethodHandler): GrpcMethod['start'] {
  const { name, log } = handler;
  const failed = (call: GrpcCall, err: unknown): void => {
    // A cancelled call's handler fails with the cancellation: nothing to answer, nothing to report.
    if (call.cancelled) {
      log.trace('call cancelled', { method: name });
      return;
    }
    const status = handler.fail(err);
    call.end(status.code, status.message);
  };
  const ok = (call: GrpcCall): void => call.end(Status.OK, '');
  const context = (call: GrpcCall): CallContext => contextFromCallMetadata(call.metadata, () => call.signal);
  switch (handler.kind) {
    case 'unary': {
      const fn = handler.fn;
      return (call, request) => {
        const start = performance.now();
        log.trace('call', { method: name });
        const done = (res: Message): void => {
          log.trace('call done', { method: name, ms: Math.round((performance.now() - start) * 10) / 10 });
          call.respond(res);
        };
        let result: Promise<Message> | Message;
        try {
          result = fn(request ?? {}, context(call));
        } catch (err) {
          failed(call, err);
          return;
        }
        // Synchronous handlers answer without a trip through the microtask queue.
        if (isPromise(result)) result.then(done, (err: unknown) => failed(call, err));
        else done(result);
      };
    }
    case 'serverStream': {
      const fn = handler.fn;
      return (call, request) => {
        log.trace('call', { method: name });
        const send = (msg: Message): Promise<void> => call.send(msg);
        let result: Promise<void>;
        try {
          result = fn(request ?? {}, context(call), send);
        } catch (err) {
          failed(call, err);
          return;
        }
        result.then(
          () => ok(call),
          (err: unknown) => failed(call, err),
        );
      };
    }
    case 'bidi': {
      const fn = handler.fn;
      return (call) => {
        log.trace('call', { method: name });
        let result: Promise<void>;
        try {
          result = fn(call, context(call));
        } catch (err) {
          failed(call, err);
          return;
        }
        result.then(
          () => ok(call),
          (err: unknown) => failed(call, err),
        );
      };
    }
  }
}

// ---- grpc-js (the default until the h2 server replaces it; then this part goes) ----

/**
 * The call's cancellation as an AbortSignal, made only when a handler asks for it: Go clients
 * reset every stream once they have their answer, and aborting a signal per call (with the
 * DOMException it builds) cost more CPU than most handlers.
 */
function callSignal(call: { on(event: 'cancelled', fn: () => void): unknown }): () => AbortSignal {
  let controller: AbortController | undefined;
  let cancelled = false;
  call.on('cancelled', () => {
    cancelled = true;
    controller?.abort();
  });
  return () => {
    if (controller === undefined) {
      controller = new AbortController();
      if (cancelled) controller.abort();
    }
    return controller.signal;
  };
}

function grpcJsError(handler: MethodHandler, err: unknown): Partial<ServiceError> {
  const status = handler.fail(err);
  return { code: status.code, details: status.message, message: status.message, metadata: new Metadata() };
}

function grpcJsUnary(handler: MethodHandler & { kind: 'unary' }): handleUnaryCall<Message, Message> {
  const { name, log, fn } = handler;
  return (call, callback) => {
    const start = performance.now();
    log.trace('call', { method: name });
    (async () => fn(call.request, contextFromMetadata(call.metadata, callSignal(call))))().then(
      (res) => {
        log.trace('call done', { method: name, ms: Math.round((performance.now() - start) * 10) / 10 });
        callback(null, res);
      },
      (err: unknown) => callback(grpcJsError(handler, err)),
    );
  };
}

function grpcJsServerStream(handler: MethodHandler & { kind: 'serverStream' }): handleServerStreamingCall<Message, Message> {
  const { name, log, fn } = handler;
  return (call) => {
    log.trace('call', { method: name });
    (async () => {
      const ctx = contextFromMetadata(call.metadata, callSignal(call));
      await fn(call.request, ctx, (msg) => writeWithBackpressure(call, msg));
    })().then(
      () => call.end(),
      (err: unknown) => call.emit('error', grpcJsError(handler, err)),
    );
  };
}

function grpcJsBidi(handler: MethodHandler & { kind: 'bidi' }): handleBidiStreamingCall<Message, Message> {
  const { name, log, fn } = handler;
  return (call) => {
    log.trace('call', { method: name });
    const bidi: BidiCall = {
      // Leaving the loop early (an error) must not destroy the call, or its status never reaches the client.
      [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) as AsyncIterator<Message>,
      send: (msg) => writeWithBackpressure(call, msg),
    };
    (async () => fn(bidi, contextFromMetadata(call.metadata, callSignal(call))))().then(
      () => call.end(),
      (err: unknown) => call.emit('error', grpcJsError(handler, err)),
    );
  };
}

/** A service's handlers as grpc-js's Server.addService takes them. */
export function grpcJsImplementation(impl: ServiceImpl): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    if (handler.kind === 'unary') out[method] = grpcJsUnary(handler);
    else if (handler.kind === 'serverStream') out[method] = grpcJsServerStream(handler);
    else out[method] = grpcJsBidi(handler);
  }
  return out;
}

/** Long-lived streams must respect write() back-pressure or memory grows (grpc-node #1332). */
function writeWithBackpressure(
  call: ServerWritableStream<Message, Message> | ServerDuplexStream<Message, Message>,
  msg: Message,
): Promise<void> {
  if (call.write(msg)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      call.off('drain', onDrain);
      call.off('error', onError);
      call.off('cancelled', onCancelled);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    // A client that goes away never drains: without this the stream's producer (a blob being
    // read, an event subscription) would wait forever.
    const onCancelled = (): void => onError(new BerthError('CANCELLED', 'the client cancelled the call'));
    call.once('drain', onDrain);
    call.once('error', onError);
    call.once('cancelled', onCancelled);
  });
}

import { toBerthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Message } from './protos.js';
import { contextFromCallMetadata, type CallContext } from './context.js';
import type { GrpcCall, GrpcMethod } from './h2/call.js';
import { Status } from './h2/status.js';

/**
 * The in-process services' side of gRPC: handlers take decoded messages and a CallContext (the
 * namespace and lease headers, parsed and validated), and every thrown value becomes a gRPC
 * status, logged once. The kit only describes handlers; h2Start() runs them for berthd's HTTP/2
 * server (server/h2).
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

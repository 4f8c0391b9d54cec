import { toBerthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Message } from './protos.js';
import { callContext, type CallContext } from './context.js';
import type { GrpcCall, GrpcMethod } from './h2/call.js';
import { Code } from '../codes.js';

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

interface HandlerBase {
  /** "Service/Method", for logs. */
  readonly name: string;
  readonly log: Logger;
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
  return {
    unary: (name, fn) => ({ kind: 'unary', name, fn, log }),
    serverStream: (name, fn) => ({ kind: 'serverStream', name, fn, log }),
    bidi: (name, fn) => ({ kind: 'bidi', name, fn, log }),
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
    const berr = toBerthError(err);
    (berr.code === 'INTERNAL' ? log.error : log.debug)('call failed', { method: name, code: berr.grpcCode, error: berr.message });
    call.end(berr.grpcCode, berr.message);
  };
  /** Server-streaming and bidi calls alike: OK when the handler's promise resolves. */
  const streaming =
    (run: (call: GrpcCall, request: Message | undefined) => Promise<void>): GrpcMethod['start'] =>
    (call, request) => {
      log.trace('call', { method: name });
      let result: Promise<void>;
      try {
        result = run(call, request);
      } catch (err) {
        failed(call, err);
        return;
      }
      result.then(
        () => call.end(Code.OK, ''),
        (err: unknown) => failed(call, err),
      );
    };
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
          result = fn(request ?? {}, callContext(call));
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
      return streaming((call, request) => fn(request ?? {}, callContext(call), (msg) => call.send(msg)));
    }
    case 'bidi': {
      const fn = handler.fn;
      return streaming((call) => fn(call, callContext(call)));
    }
  }
}

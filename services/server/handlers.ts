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
import { contextFromMetadata, type CallContext } from './context.js';

/**
 * Adapters from grpc-js call objects to the in-process services: parse the namespace and lease
 * headers, turn every thrown value into a gRPC status, and log failures once.
 */
export type Unary = (req: Message, ctx: CallContext) => Promise<Message> | Message;
export type ServerStream = (req: Message, ctx: CallContext, send: (msg: Message) => Promise<void>) => Promise<void>;
export type BidiStream = (call: ServerDuplexStream<Message, Message>, ctx: CallContext) => Promise<void>;

export interface HandlerKit {
  unary(name: string, fn: Unary): handleUnaryCall<Message, Message>;
  serverStream(name: string, fn: ServerStream): handleServerStreamingCall<Message, Message>;
  bidi(name: string, fn: BidiStream): handleBidiStreamingCall<Message, Message>;
}

export function toServiceError(err: unknown): Partial<ServiceError> {
  const berr = toBerthError(err);
  return { code: berr.grpcCode, details: berr.message, message: berr.message, metadata: new Metadata() };
}

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

export function handlerKit(log: Logger): HandlerKit {
  const fail = (name: string, err: unknown): Partial<ServiceError> => {
    const serviceError = toServiceError(err);
    const internal = toBerthError(err).code === 'INTERNAL';
    (internal ? log.error : log.debug)('call failed', { method: name, code: serviceError.code, error: serviceError.details });
    return serviceError;
  };
  return {
    unary: (name, fn) => (call, callback) => {
      const start = performance.now();
      log.trace('call', { method: name });
      (async () => fn(call.request, contextFromMetadata(call.metadata, callSignal(call))))().then(
        (res) => {
          log.trace('call done', { method: name, ms: Math.round((performance.now() - start) * 10) / 10 });
          callback(null, res);
        },
        (err: unknown) => callback(fail(name, err)),
      );
    },
    serverStream: (name, fn) => (call) => {
      log.trace('call', { method: name });
      (async () => {
        const ctx = contextFromMetadata(call.metadata, callSignal(call));
        await fn(call.request, ctx, (msg) => writeWithBackpressure(call, msg));
      })().then(
        () => call.end(),
        (err: unknown) => call.emit('error', fail(name, err)),
      );
    },
    bidi: (name, fn) => (call) => {
      log.trace('call', { method: name });
      (async () => fn(call, contextFromMetadata(call.metadata, callSignal(call))))().then(
        () => call.end(),
        (err: unknown) => call.emit('error', fail(name, err)),
      );
    },
  };
}

/** Long-lived streams must respect write() back-pressure or memory grows (grpc-node #1332). */
export function writeWithBackpressure(
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

export type ServiceImpl = UntypedServiceImplementation;

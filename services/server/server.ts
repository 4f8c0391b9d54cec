import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../log.js';
import { serviceDefinition } from './protos.js';
import { h2Start, type ServiceImpl } from './handlers.js';
import type { GrpcMethod } from './h2/call.js';
import { GrpcServer } from './h2/server.js';

export interface RegisteredService {
  /** Fully qualified protobuf service name, e.g. containerd.services.content.v1.Content. */
  name: string;
  impl: ServiceImpl;
}

export interface RunningServer {
  readonly address: string;
  /** Stops accepting calls, lets in-flight ones finish for up to graceMs, then cuts the rest. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startServer(address: string, services: RegisteredService[], log: Logger): Promise<RunningServer> {
  await mkdir(dirname(address), { recursive: true, mode: 0o700 });
  // A socket left by a killed daemon would make bind fail with EADDRINUSE.
  await rm(address, { force: true });
  const server = new GrpcServer(h2Methods(services), log.child({ component: 'h2' }));
  await server.listen(address);
  await chmod(address, 0o660);
  log.info('serving', { address });
  return {
    address,
    shutdown: async (graceMs) => {
      if (!(await server.shutdown(graceMs))) log.warn('in-flight calls did not finish in time; closed them', { graceMs });
      await rm(address, { force: true });
    },
  };
}

/** The h2 server's routes: every method of every registered service that has a handler. */
function h2Methods(services: RegisteredService[]): Map<string, GrpcMethod> {
  const methods = new Map<string, GrpcMethod>();
  for (const s of services) {
    for (const [name, def] of Object.entries(serviceDefinition(s.name))) {
      const handler = s.impl[name];
      if (handler === undefined) continue; // answered UNIMPLEMENTED, as grpc-js does
      const wantsStream = handler.kind === 'bidi';
      if (def.requestStream !== wantsStream || def.responseStream !== (handler.kind !== 'unary')) {
        throw new Error(`${def.path}: a ${handler.kind} handler does not fit the method's streaming`);
      }
      methods.set(def.path, {
        requestStream: def.requestStream,
        decode: def.requestDeserialize,
        encode: def.responseSerialize,
        start: h2Start(handler),
      });
    }
  }
  return methods;
}

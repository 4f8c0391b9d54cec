import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { serviceDefinition } from './protos.js';
import type { ServiceImpl } from './handlers.js';

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

/** containerd's default: 16 MiB each way, which ctr also sets on its side. */
const MAX_MESSAGE = 16 << 20;

export async function startServer(address: string, services: RegisteredService[], log: Logger): Promise<RunningServer> {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE,
    'grpc.max_send_message_length': MAX_MESSAGE,
  });
  for (const s of services) server.addService(serviceDefinition(s.name), s.impl);

  await mkdir(dirname(address), { recursive: true, mode: 0o700 });
  // A socket left by a killed daemon would make bind fail with EADDRINUSE.
  await rm(address, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${address}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  await chmod(address, 0o660);
  log.info('serving', { address });

  return {
    address,
    shutdown: async (graceMs) => {
      const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
      if ((await Promise.race([graceful, timer])) === 'timeout') {
        log.warn('in-flight calls did not finish in time; closing them', { graceMs });
        server.forceShutdown();
      }
      await rm(address, { force: true });
    },
  };
}

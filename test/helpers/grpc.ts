import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { serviceDefinition, type Message } from '../../services/server/protos.js';

/**
 * A raw gRPC client for berthd's API, built from the same protos the daemon serves, for tests
 * that must send what ctr never sends (bad digests, missing namespaces, half-finished writes).
 */
export interface ApiClient {
  unary(method: string, req: Message, namespace?: string | null): Promise<Message>;
  serverStream(method: string, req: Message, namespace?: string | null): Promise<Message[]>;
  bidi(method: string, namespace?: string | null): BidiCall;
  close(): void;
}

export interface BidiCall {
  write(msg: Message): void;
  read(): Promise<Message>;
  end(): Promise<void>;
  cancel(): void;
}

type RawClient = Client & Record<string, (...args: unknown[]) => unknown>;

function meta(namespace: string | null | undefined): Metadata {
  const m = new Metadata();
  if (namespace !== null) m.set('containerd-namespace', namespace ?? 'default');
  return m;
}

/** `Service/Method` with the service's full name, e.g. containerd.services.content.v1.Content/Info. */
export function apiClient(address: string): ApiClient {
  const clients = new Map<string, RawClient>();
  const client = (service: string): RawClient => {
    let c = clients.get(service);
    if (!c) {
      const Ctor = makeGenericClientConstructor(serviceDefinition(service), service);
      c = new Ctor(`unix://${address}`, credentials.createInsecure()) as unknown as RawClient;
      clients.set(service, c);
    }
    return c;
  };
  const split = (method: string): [RawClient, string] => {
    const [service, name] = method.split('/');
    if (!service || !name) throw new Error(`method ${method}: want Service/Method`);
    return [client(service), name];
  };
  return {
    unary: (method, req, namespace) =>
      new Promise((resolve, reject) => {
        const [c, name] = split(method);
        c[name]?.(req, meta(namespace), (err: ServiceError | null, res: Message) => (err ? reject(err) : resolve(res)));
      }),
    serverStream: (method, req, namespace) =>
      new Promise((resolve, reject) => {
        const [c, name] = split(method);
        const call = c[name]?.(req, meta(namespace)) as NodeJS.ReadableStream;
        const out: Message[] = [];
        call.on('data', (m: Message) => out.push(m));
        call.on('error', reject);
        call.on('end', () => resolve(out));
      }),
    bidi: (method, namespace) => {
      const [c, name] = split(method);
      const call = c[name]?.(meta(namespace)) as NodeJS.ReadWriteStream & { cancel(): void };
      const queue: Message[] = [];
      const waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
      let failure: Error | undefined;
      call.on('data', (m: Message) => {
        const w = waiters.shift();
        if (w) w.resolve(m);
        else queue.push(m);
      });
      call.on('error', (e: Error) => {
        failure = e;
        for (const w of waiters.splice(0)) w.reject(e);
      });
      return {
        write: (msg) => void call.write(msg as never),
        read: () => {
          const next = queue.shift();
          if (next) return Promise.resolve(next);
          if (failure) return Promise.reject(failure);
          return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
        },
        end: () =>
          new Promise((resolve, reject) => {
            call.on('end', () => resolve());
            call.on('error', reject);
            call.end();
            call.resume();
          }),
        cancel: () => call.cancel(),
      };
    },
    close: () => {
      for (const c of clients.values()) c.close();
    },
  };
}

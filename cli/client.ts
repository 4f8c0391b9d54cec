import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { resolve } from 'node:path';
import { serviceDefinition, type Message } from '../services/server/protos.js';

/** Short names for the services the CLI calls; the wire names are containerd's (api.md §1.2). */
const SERVICES = {
  containers: 'containerd.services.containers.v1.Containers',
  content: 'containerd.services.content.v1.Content',
  diff: 'containerd.services.diff.v1.Diff',
  events: 'containerd.services.events.v1.Events',
  images: 'containerd.services.images.v1.Images',
  introspection: 'containerd.services.introspection.v1.Introspection',
  leases: 'containerd.services.leases.v1.Leases',
  namespaces: 'containerd.services.namespaces.v1.Namespaces',
  pull: 'berth.services.pull.v1.Pull',
  snapshots: 'containerd.services.snapshots.v1.Snapshots',
  tasks: 'containerd.services.tasks.v1.Tasks',
  version: 'containerd.services.version.v1.Version',
} as const;

export type ServiceName = keyof typeof SERVICES;

export interface CallOptions {
  /** Sent as `containerd-lease`: what the call writes is held by the lease until it is deleted. */
  lease?: string;
}

/** The same 16 MiB limit containerd's clients use (api.md §1.1). */
const MAX_MESSAGE = 16 * 1024 * 1024;

type UnaryFn = (req: Message, meta: Metadata, cb: (err: ServiceError | null, res: Message) => void) => void;
type ServerStreamFn = (req: Message, meta: Metadata) => ClientReadableStream<Message>;
type DuplexFn = (meta: Metadata) => ClientDuplexStream<Message, Message>;

/**
 * A gRPC client for berthd bound to one namespace. Service clients are built on first use so a
 * command only pays for the services it calls; all share one HTTP/2 connection (grpc-js pools
 * channels with identical targets and options).
 */
export class Api {
  readonly #clients = new Map<ServiceName, Client>();

  constructor(
    readonly address: string,
    readonly namespace: string,
  ) {}

  #method(service: ServiceName, method: string): (...args: unknown[]) => unknown {
    let client = this.#clients.get(service);
    if (!client) {
      const Ctor = makeGenericClientConstructor(serviceDefinition(SERVICES[service]), service);
      client = new Ctor(`unix:${resolve(this.address)}`, credentials.createInsecure(), {
        'grpc.max_receive_message_length': MAX_MESSAGE,
        'grpc.max_send_message_length': MAX_MESSAGE,
      });
      this.#clients.set(service, client);
    }
    const fn = (client as unknown as Record<string, unknown>)[method];
    if (typeof fn !== 'function') throw new Error(`${SERVICES[service]} has no method ${method}`);
    return (fn as (...args: unknown[]) => unknown).bind(client);
  }

  #metadata(opts: CallOptions): Metadata {
    const meta = new Metadata();
    meta.set('containerd-namespace', this.namespace);
    if (opts.lease) meta.set('containerd-lease', opts.lease);
    return meta;
  }

  /** One request, one response. `Res` is the caller's view of the decoded message. */
  unary<Res extends object>(service: ServiceName, method: string, req: object, opts: CallOptions = {}): Promise<Res> {
    const fn = this.#method(service, method) as UnaryFn;
    return new Promise((resolvePromise, reject) => {
      fn(req as Message, this.#metadata(opts), (err, res) => (err ? reject(err) : resolvePromise(res as Res)));
    });
  }

  /** A server stream as an async iterable; breaking out of the loop cancels the call. */
  async *stream<Res extends object>(service: ServiceName, method: string, req: object, opts: CallOptions = {}): AsyncGenerator<Res> {
    const call = (this.#method(service, method) as ServerStreamFn)(req as Message, this.#metadata(opts));
    try {
      for await (const msg of call) yield msg as Res;
    } finally {
      call.cancel();
    }
  }

  /** Every message of a server stream, for the listing calls whose streams are short. */
  async collect<Res extends object>(service: ServiceName, method: string, req: object, opts: CallOptions = {}): Promise<Res[]> {
    const out: Res[] = [];
    for await (const msg of this.stream<Res>(service, method, req, opts)) out.push(msg);
    return out;
  }

  duplex(service: ServiceName, method: string, opts: CallOptions = {}): ClientDuplexStream<Message, Message> {
    return (this.#method(service, method) as DuplexFn)(this.#metadata(opts));
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

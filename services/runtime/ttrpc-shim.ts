import { fromGrpcStatus } from '../errors.js';
import { protoRoot, type Message } from '../server/protos.js';
import { TtrpcClient } from '../ttrpc/client.js';
import type { ShimCallOptions, TaskMethod, TaskShim } from '../tasks/shim.js';
import { NAMESPACE_KEY } from '../ttrpc/envelope.js';

const TASK_SERVICE = 'containerd.task.v2.Task';
/** A shim that answers nothing for this long is treated as hung; Wait alone has no deadline. */
const DEFAULT_TIMEOUT_MS = 60_000;

function methodTypes(method: TaskMethod): [string, string] {
  const m = protoRoot().lookupService(TASK_SERVICE).methods[method];
  if (!m) throw new Error(`${TASK_SERVICE} has no method ${method}`);
  m.resolve();
  return [m.resolvedRequestType?.fullName.slice(1) ?? '', m.resolvedResponseType?.fullName.slice(1) ?? ''];
}

/** containerd.task.v2.Task over one ttrpc connection; shim statuses become BerthErrors. */
export class TtrpcTaskShim implements TaskShim {
  readonly closed: Promise<void>;

  private constructor(
    readonly address: string,
    private readonly client: TtrpcClient,
  ) {
    this.closed = client.closed.then(() => undefined);
  }

  static async connect(address: string, timeoutMs: number): Promise<TtrpcTaskShim> {
    try {
      return new TtrpcTaskShim(address, await TtrpcClient.connect(address, timeoutMs));
    } catch (err) {
      const e = err as { grpcCode?: number; message?: string };
      throw fromGrpcStatus(e.grpcCode ?? 14, `shim ${address}: ${e.message ?? String(err)}`);
    }
  }

  async call<T = Message>(method: TaskMethod, req: Message, opts: ShimCallOptions = {}): Promise<T> {
    const [reqType, resType] = methodTypes(method);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const metadata = opts.namespace ? { [NAMESPACE_KEY]: opts.namespace } : undefined;
    try {
      return await this.client.call<T & object>(TASK_SERVICE, method, reqType, resType, req, timeoutMs > 0 ? { timeoutMs, metadata } : { metadata });
    } catch (err) {
      const e = err as { grpcCode?: number; message?: string };
      throw fromGrpcStatus(e.grpcCode ?? 2, e.message ?? String(err));
    }
  }

  close(): void {
    this.client.close();
  }
}

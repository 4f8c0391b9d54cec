import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, existsSync, writeSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeMessage, messageType, type Message } from '../../../services/server/protos.js';
import { TtrpcClient, TtrpcServer, type CallContext } from '../../../services/ttrpc/index.js';

/** The shim under test; BERTH_SHIM_TEST_BIN runs the suite against another build (a sanitizer one). */
export const SHIM_BIN = process.env.BERTH_SHIM_TEST_BIN ?? fileURLToPath(new URL('../../../bin/berth-shim', import.meta.url));
export const TASK = 'containerd.task.v2.Task';
export const NAMESPACE = 'shimtest';
/** cgroups of test containers live under this parent, then one per test state dir. */
export const CGROUP_PARENT = 'berth-shim-test';

/** The cgroup parent of one test state dir, so parallel test files never touch each other's. */
function cgroupParent(dir: string): string {
  return join(CGROUP_PARENT, basename(dir));
}

/** Encodes containerd.runc.v1.Options{binary_name} as the Any a daemon writes to `start`'s stdin. */
export function runtimeOptionsAny(binary: string): { type_url: string; value: Buffer } {
  return { type_url: 'containerd.runc.v1.Options', value: encodeMessage(messageType('containerd.runc.v1.Options'), { binary_name: binary }) };
}

export interface BundleOptions {
  args: string[];
  annotations?: Record<string, string>;
  terminal?: boolean;
  memoryLimit?: number;
}

/** A busybox bundle: rootfs with /bin/busybox and its applet links, config.json from `runc spec`. */
export function makeBundle(dir: string, id: string, opts: BundleOptions): string {
  const bundle = join(dir, 'bundles', id);
  const bin = join(bundle, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync('/bin/busybox', join(bin, 'busybox'));
  for (const applet of ['sh', 'echo', 'cat', 'sleep', 'true', 'stty', 'test']) symlinkSync('busybox', join(bin, applet));
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(bundle, 'rootfs', d), { recursive: true });
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const specPath = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    root: { readonly: boolean };
    linux: { cgroupsPath?: string; namespaces: { type: string }[]; resources?: Record<string, unknown> };
    annotations?: Record<string, string>;
  };
  spec.process.terminal = opts.terminal ?? false;
  spec.process.args = opts.args;
  spec.root.readonly = false;
  spec.linux.cgroupsPath = `/${cgroupParent(dir)}/${id}`;
  // No network namespace: nothing here needs one, and it keeps runc fast.
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
  if (opts.annotations) spec.annotations = opts.annotations;
  if (opts.memoryLimit) spec.linux.resources = { ...spec.linux.resources, memory: { limit: opts.memoryLimit, swap: opts.memoryLimit } };
  writeFileSync(specPath, JSON.stringify(spec, null, 2));
  return bundle;
}

export interface ShimEnv {
  stateDir: string;
  eventsSocket: string;
  runtime: string;
}

/** Runs `berth-shim ... start` as a daemon would and returns the printed address. */
export function startShim(env: ShimEnv, bundle: string, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM_BIN, ['-namespace', NAMESPACE, '-address', join(env.stateDir, 'berthd.sock'), '-publish-binary', '/bin/true', '-id', id, 'start'], {
      cwd: bundle,
      env: { ...process.env, BERTH_STATE_DIR: env.stateDir, TTRPC_ADDRESS: env.eventsSocket },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`start exited ${code}: ${Buffer.concat(err).toString()}`));
    });
    child.stdin.end(encodeMessage(messageType('google.protobuf.Any'), runtimeOptionsAny(env.runtime)));
  });
}

/** Runs `berth-shim ... delete` and decodes the DeleteResponse it prints. */
export function deleteViaBinary(env: ShimEnv, bundle: string, id: string): Message {
  const out = execFileSync(SHIM_BIN, ['-namespace', NAMESPACE, '-id', id, '-bundle', bundle, 'delete'], {
    env: { ...process.env, BERTH_STATE_DIR: env.stateDir },
  });
  return decodeMessage(messageType('containerd.task.v2.DeleteResponse'), out);
}

/** Typed calls on the shim's Task service. */
export class TaskClient {
  private constructor(readonly client: TtrpcClient) {}

  static async connect(address: string): Promise<TaskClient> {
    return new TaskClient(await TtrpcClient.connect(address));
  }

  call(method: string, request: object, timeoutMs = 60_000): Promise<Message> {
    const { req, res } = methodTypes(method);
    return this.client.call(TASK, method, req, res, request, { timeoutMs, metadata: { 'containerd-namespace-ttrpc': NAMESPACE } });
  }

  close(): void {
    this.client.close();
  }
}

const REQUEST_NAMES: Record<string, [string, string]> = {
  Create: ['CreateTaskRequest', 'CreateTaskResponse'],
  Start: ['StartRequest', 'StartResponse'],
  Delete: ['DeleteRequest', 'DeleteResponse'],
  State: ['StateRequest', 'StateResponse'],
  Pids: ['PidsRequest', 'PidsResponse'],
  Pause: ['PauseRequest', 'google.protobuf.Empty'],
  Resume: ['ResumeRequest', 'google.protobuf.Empty'],
  Kill: ['KillRequest', 'google.protobuf.Empty'],
  Update: ['UpdateTaskRequest', 'google.protobuf.Empty'],
  Exec: ['ExecProcessRequest', 'google.protobuf.Empty'],
  CloseIO: ['CloseIORequest', 'google.protobuf.Empty'],
  ResizePty: ['ResizePtyRequest', 'google.protobuf.Empty'],
  Wait: ['WaitRequest', 'WaitResponse'],
  Connect: ['ConnectRequest', 'ConnectResponse'],
  Shutdown: ['ShutdownRequest', 'google.protobuf.Empty'],
  Stats: ['StatsRequest', 'StatsResponse'],
  Checkpoint: ['CheckpointTaskRequest', 'google.protobuf.Empty'],
};

function methodTypes(method: string): { req: string; res: string } {
  const names = REQUEST_NAMES[method];
  if (!names) throw new Error(`no types for ${method}`);
  const full = (n: string) => (n.includes('.') ? n : `containerd.task.v2.${n}`);
  return { req: full(names[0]), res: full(names[1]) };
}

export interface ReceivedEvent {
  seq: number;
  shimId: string;
  namespace: string;
  topic: string;
  typeUrl: string;
  event: Message;
}

/** The daemon's side of event forwarding: a ttrpc Events server that records what arrives. */
export class EventSink {
  readonly events: ReceivedEvent[] = [];
  private server: TtrpcServer | undefined;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: string) {}

  async start(): Promise<void> {
    const server = new TtrpcServer();
    server.register('containerd.services.events.ttrpc.v1.Events', {
      Forward: (req: { envelope?: { namespace?: string; topic?: string; event?: { type_url?: string; value?: Buffer } } }, ctx: CallContext) => {
        const env = req.envelope ?? {};
        const typeUrl = env.event?.type_url ?? '';
        this.events.push({
          seq: Number(ctx.metadata['berth-event-seq']?.[0]),
          shimId: ctx.metadata['berth-shim-id']?.[0] ?? '',
          namespace: env.namespace ?? '',
          topic: env.topic ?? '',
          typeUrl,
          event: decodeMessage(messageType(typeUrl), env.event?.value ?? Buffer.alloc(0)),
        });
        for (const w of this.waiters.splice(0)) w();
        return {};
      },
    });
    await server.listen(this.socket);
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** Resolves with the first event matching `pred`, waiting for it if needed. */
  async waitFor(pred: (e: ReceivedEvent) => boolean, timeoutMs = 30_000): Promise<ReceivedEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`event not received; got ${this.events.map((e) => e.topic).join(', ')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
}

/** A client-side FIFO set like containerd's cio: created, read ends opened before Create. */
export class Fifos {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  private readonly readers: net.Socket[] = [];
  private readonly chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  readonly stdoutEnded: Promise<void>;
  readonly stderrEnded: Promise<void>;

  constructor(dir: string, name: string) {
    mkdirSync(dir, { recursive: true });
    this.stdin = join(dir, `${name}-stdin`);
    this.stdout = join(dir, `${name}-stdout`);
    this.stderr = join(dir, `${name}-stderr`);
    execFileSync('mkfifo', [this.stdin, this.stdout, this.stderr]);
    this.stdoutEnded = this.read('stdout');
    this.stderrEnded = this.read('stderr');
  }

  private read(which: 'stdout' | 'stderr'): Promise<void> {
    const fd = openSync(this[which], constants.O_RDONLY | constants.O_NONBLOCK);
    const socket = new net.Socket({ fd, readable: true, writable: false });
    this.readers.push(socket);
    socket.on('data', (b: Buffer) => this.chunks[which].push(b));
    return new Promise((resolve) => socket.once('end', () => resolve()));
  }

  /** Writes to stdin the way a client does, once the shim has its read end open. */
  writeStdin(text: string): void {
    const fd = openSync(this.stdin, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }

  output(which: 'stdout' | 'stderr'): string {
    return Buffer.concat(this.chunks[which]).toString();
  }

  close(): void {
    for (const r of this.readers) r.destroy();
  }
}

/**
 * Removes the cgroups of the tests that used state dir `dir` (empty once their containers are
 * gone) from every hierarchy, then the shared parent if no other test file still uses it.
 */
export function removeTestCgroups(dir: string): void {
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const parent = join('/sys/fs/cgroup', controller, cgroupParent(dir));
    if (!existsSync(parent)) continue;
    for (const child of readdirSync(parent, { withFileTypes: true })) {
      if (child.isDirectory()) tryRmdir(join(parent, child.name));
    }
    tryRmdir(parent);
    tryRmdir(join('/sys/fs/cgroup', controller, CGROUP_PARENT));
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // still in use or already gone; reported by the leak check instead
  }
}

import { spawn } from 'node:child_process';
import { constants, existsSync, openSync } from 'node:fs';
import { lstat, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { mknod } from '../native/addon.js';
import { BerthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AnyValue } from '../containers/service.js';
import { packagePath } from '../paths.js';
import { encodeMessage, messageType } from '../server/protos.js';
import type { Bundle } from '../tasks/bundle.js';
import type { ShimLauncher } from '../tasks/service.js';
import type { TaskShim } from '../tasks/shim.js';
import { TtrpcTaskShim } from './ttrpc-shim.js';
import { groupHash, groupKey } from './shim-group.js';

export interface ShimManagerOptions {
  state: string;
  /** berthd's gRPC socket, passed to shims as -address. */
  grpcAddress: string;
  /** berthd's ttrpc socket where shims forward events (TTRPC_ADDRESS). */
  eventsAddress: string;
  shimBinary?: string;
  log: Logger;
}

const BERTH_SHIM = packagePath('bin', 'berth-shim');
const START_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a shim subcommand of containerd's runtime v2 binary contract and collects its output. */
function runShim(binary: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, stdin: Buffer): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // `delete` never reads its stdin, and a C shim can exit before the write lands: EPIPE there
    // says nothing about the command, whose exit status does.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

/**
 * A dead shim cannot remove its socket, and containerd's runc shim keeps it outside our state dir
 * (/run/containerd/s), one per task: removed as containerd does. A berth-shim's socket is its
 * group's, which `berth-shim start` takes over when it finds nobody listening.
 */
async function removeDeadSocket(address: string | undefined): Promise<void> {
  const path = address?.startsWith('unix://') ? address.slice('unix://'.length) : undefined;
  if (!path) return;
  const st = await lstat(path).catch(() => undefined);
  if (st?.isSocket()) await unlink(path).catch(() => undefined);
}

/**
 * Starts shims through the binary contract (`start` prints the address of a new shim or of the
 * running shim of the task's group) and keeps one ttrpc connection per shim address.
 */
export class ShimManager implements ShimLauncher {
  private readonly connections = new Map<string, Promise<TaskShim>>();
  private readonly binary: string;

  constructor(private readonly opts: ShimManagerOptions) {
    this.binary = opts.shimBinary ?? BERTH_SHIM;
  }

  private get isBerthShim(): boolean {
    return this.binary === BERTH_SHIM;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, TTRPC_ADDRESS: this.opts.eventsAddress, BERTH_STATE_DIR: this.opts.state };
  }

  /**
   * The runtime v2 contract has the daemon create `log` (a FIFO) in the bundle before `start`;
   * shims write their log there (containerd's runc shim refuses to run without it).
   */
  private followShimLog(bundle: Bundle, id: string): Socket {
    const path = join(bundle.path, 'log');
    mknod(path, constants.S_IFIFO | 0o600, 0, 0);
    // Read-write, so the FIFO never reads as EOF before the shim opens it (the shim's open for
    // writing would then wait forever for a reader); a net.Socket polls it without tying up a
    // libuv worker thread the way fs streams would.
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    const pipe = new Socket({ fd, readable: true, writable: false });
    pipe.on('error', () => undefined);
    createInterface({ input: pipe }).on('line', (line) => this.opts.log.debug('shim', { id, line }));
    return pipe;
  }

  /**
   * The task's group shim, if one is serving and accepts the task: the same reservation that
   * `berth-shim start` makes (Task/Connect), over the connection berthd already holds, without a
   * process to make it.
   */
  private async reserveGroupShim(namespace: string, id: string, socket: string): Promise<TaskShim | undefined> {
    if (!existsSync(socket)) return undefined;
    try {
      const shim = await this.connect(`unix://${socket}`, CONNECT_TIMEOUT_MS);
      await shim.call('Connect', { id }, { namespace, timeoutMs: CONNECT_TIMEOUT_MS });
      return shim;
    } catch {
      return undefined;
    }
  }

  async start(namespace: string, id: string, bundle: Bundle, options: AnyValue | undefined): Promise<TaskShim> {
    if (this.isBerthShim) {
      const socket = join(this.opts.state, 's', groupHash(this.opts.grpcAddress, namespace, groupKey(bundle.path, id)));
      const joined = await this.reserveGroupShim(namespace, id, socket);
      if (joined) return joined;
    }
    const stdin = options ? encodeMessage(messageType('google.protobuf.Any'), options) : Buffer.alloc(0);
    const shimLog = this.followShimLog(bundle, id);
    const args = ['-namespace', namespace, '-address', this.opts.grpcAddress, '-publish-binary', packagePath('bin', 'berthd'), '-id', id, 'start'];
    const res = await runShim(this.binary, args, bundle.path, this.env(), stdin);
    const address = res.stdout.trim();
    if (res.code !== 0 || !address) {
      shimLog.destroy();
      throw new BerthError('UNAVAILABLE', `starting the shim for task ${id} failed: ${res.stderr.trim() || `exit ${String(res.code)}`}`);
    }
    const shim = await this.connect(address, CONNECT_TIMEOUT_MS).catch((err: unknown) => {
      shimLog.destroy();
      throw err;
    });
    void shim.closed.then(() => shimLog.destroy());
    return shim;
  }

  /**
   * containerd's shims serve one task and exit on Shutdown, so they get it, as containerd does.
   * A berth-shim serves a group and exits by itself a moment after its last task, which lets a
   * group's next task (a `ctr run --rm` loop, a pod's next container) join it instead.
   */
  async released(namespace: string, id: string, shim: TaskShim): Promise<void> {
    if (this.isBerthShim) return;
    await shim.call('Shutdown', { id }, { namespace, timeoutMs: 5_000 }).catch(() => undefined);
  }

  connect(address: string, timeoutMs: number): Promise<TaskShim> {
    let conn = this.connections.get(address);
    if (!conn) {
      conn = TtrpcTaskShim.connect(address, timeoutMs);
      this.connections.set(address, conn);
      conn.then(
        (shim) => shim.closed.then(() => this.forget(address, conn)),
        () => this.forget(address, conn),
      );
    }
    return conn;
  }

  async cleanup(namespace: string, id: string, bundle: Bundle): Promise<void> {
    const args = ['-namespace', namespace, '-address', this.opts.grpcAddress, '-id', id, '-bundle', bundle.path, 'delete'];
    const res = await runShim(this.binary, args, bundle.path, this.env(), Buffer.alloc(0));
    if (res.code !== 0) throw new BerthError('INTERNAL', `shim delete for task ${id} failed: ${res.stderr.trim() || `exit ${String(res.code)}`}`);
    if (!this.isBerthShim) await removeDeadSocket(await bundle.readAddress());
    this.opts.log.debug('cleaned up task of a dead shim', { namespace, id });
  }

  async closeAll(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    for (const c of all) (await c.catch(() => undefined))?.close();
  }

  private forget(address: string, conn: Promise<TaskShim> | undefined): void {
    if (this.connections.get(address) === conn) this.connections.delete(address);
  }
}

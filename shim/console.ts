import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tty from 'node:tty';
import { processNative, type FdWatch } from '../services/native/addon.js';
import { consoleDir } from './paths.js';
import type { StdioPaths } from './stdio.js';

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;
/** How long to wait before retrying a write to a full pty input buffer. */
const PTY_RETRY_MS = 20;

function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * The --console-socket a runtime connects to in order to hand over the pty master (SCM_RIGHTS).
 * Listened on natively: the accepted connection's fd is needed for recvmsg, and net.Server hides it.
 */
export class ConsoleSocket {
  readonly path: string;
  readonly master: Promise<number>;
  private readonly fds = new Set<number>();
  private readonly watches = new Set<FdWatch>();

  constructor() {
    mkdirSync(consoleDir(), { recursive: true, mode: 0o700 });
    this.path = join(consoleDir(), `${randomBytes(8).toString('hex')}.sock`);
    const listenFd = processNative.unixListen(this.path);
    this.fds.add(listenFd);
    this.master = new Promise((resolve, reject) => this.acceptNext(listenFd, resolve, reject));
    // Nobody may be waiting yet; a failure is reported by whoever awaits master.
    this.master.catch(() => undefined);
  }

  close(): void {
    for (const w of this.watches) w.close();
    this.watches.clear();
    for (const fd of this.fds) closeQuietly(fd);
    this.fds.clear();
    try {
      unlinkSync(this.path);
    } catch {
      // never created or already removed
    }
  }

  private watch(fd: number, onReady: () => void): void {
    const w = new processNative.FdWatch(fd, () => {
      this.watches.delete(w);
      onReady();
    });
    this.watches.add(w);
  }

  private acceptNext(listenFd: number, resolve: (fd: number) => void, reject: (e: Error) => void): void {
    this.watch(listenFd, () => {
      try {
        const conn = processNative.acceptFd(listenFd);
        if (conn === null) return this.acceptNext(listenFd, resolve, reject);
        this.fds.add(conn);
        this.receive(conn, resolve, reject);
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  private receive(conn: number, resolve: (fd: number) => void, reject: (e: Error) => void): void {
    this.watch(conn, () => {
      try {
        const fd = processNative.recvFd(conn);
        if (fd === null) return this.receive(conn, resolve, reject);
        resolve(fd);
      } catch (err) {
        reject(err as Error);
      }
    });
  }
}

/**
 * Copies between the client's FIFOs and a pty master: stdin FIFO → master, master → stdout FIFO.
 * The master is read through a libuv tty handle; writes to it are non-blocking and retried, so a
 * container that stops reading its terminal cannot stall the shim (and every task it serves).
 */
export class ConsoleIO {
  readonly drained: Promise<void>;
  private readonly master: tty.ReadStream;
  private stdinSource: net.Socket | undefined;
  private stdinKeeper: number | undefined;
  private stdoutGuard: number | undefined;
  private readonly pending: Buffer[] = [];
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly masterFd: number,
    paths: StdioPaths,
  ) {
    this.master = new tty.ReadStream(masterFd);
    processNative.setBlocking(masterFd, false);
    const stdout = this.openStdout(paths.stdout);
    this.drained = new Promise((resolve) => {
      const finish = (): void => {
        if (!stdout) return resolve();
        stdout.end(() => resolve());
      };
      this.master.on('data', (chunk: Buffer) => stdout?.write(chunk));
      // EIO is how a pty master reports that the last slave fd closed: the terminal's EOF.
      this.master.on('error', finish);
      this.master.on('end', finish);
    });
    if (paths.stdin) this.openStdin(paths.stdin);
  }

  resize(columns: number, rows: number): void {
    processNative.ptyResize(this.masterFd, columns, rows);
  }

  closeStdin(): void {
    this.stdinSource?.destroy();
    this.stdinSource = undefined;
    closeQuietly(this.stdinKeeper);
    this.stdinKeeper = undefined;
  }

  close(): void {
    this.closeStdin();
    clearTimeout(this.retry);
    this.master.destroy();
    closeQuietly(this.stdoutGuard);
    this.stdoutGuard = undefined;
  }

  private openStdout(path: string): net.Socket | undefined {
    if (!path) return undefined;
    this.stdoutGuard = openSync(path, O_RDONLY | O_NONBLOCK);
    const fd = openSync(path, O_WRONLY | O_NONBLOCK);
    const socket = new net.Socket({ fd, readable: false, writable: true });
    socket.on('error', () => socket.destroy());
    return socket;
  }

  private openStdin(path: string): void {
    const fd = openSync(path, O_RDONLY | O_NONBLOCK);
    // A writer of our own keeps the FIFO from reading EOF before the client connects.
    this.stdinKeeper = openSync(path, O_WRONLY | O_NONBLOCK);
    const source = new net.Socket({ fd, readable: true, writable: false });
    source.on('data', (chunk: Buffer) => {
      this.pending.push(chunk);
      this.flushToMaster();
    });
    source.on('error', () => source.destroy());
    this.stdinSource = source;
  }

  private flushToMaster(): void {
    while (this.pending.length > 0) {
      const chunk = this.pending[0]!;
      let written: number;
      try {
        written = writeSync(this.masterFd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.pending.length = 0;
          return;
        }
        this.stdinSource?.pause();
        this.retry ??= setTimeout(() => {
          this.retry = undefined;
          this.flushToMaster();
        }, PTY_RETRY_MS);
        return;
      }
      if (written < chunk.length) this.pending[0] = chunk.subarray(written);
      else this.pending.shift();
    }
    this.stdinSource?.resume();
  }
}

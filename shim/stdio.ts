import { closeSync, constants, openSync } from 'node:fs';
import { processNative } from '../services/native/addon.js';
import type { Stdio } from './runtime.js';

// libuv opens every fd O_CLOEXEC, so no runtime spawned later inherits another task's FIFOs.
const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
}

function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}

/** Opens without blocking (a FIFO open would wait for its peer), then hands out a blocking fd. */
function openFifo(path: string, flags: number): number {
  return openSync(path, flags | O_NONBLOCK);
}

/**
 * The client's stdio FIFOs wired straight into a non-terminal process: the runtime passes its
 * stdio to the container, so the container writes the FIFOs itself and no byte goes through Node.
 * The shim keeps, per FIFO, the end that makes it safe:
 *  - stdin: a write end, so the container does not read EOF before the client has connected;
 *    dropped on CloseIO (then EOF arrives when the client closes too) and at exit.
 *  - stdout/stderr: a read end, so opening for writing never fails with ENXIO and a vanished
 *    reader never makes the container's writes fail with EPIPE (containerd's shim does the same).
 * The write ends are owned by the container only, so the client sees EOF exactly when the last
 * process holding them has exited: the "close when exited and drained" rule holds by construction.
 */
export class FifoIO {
  /** Handed to the runtime; the shim's copies close once the runtime has run (releaseRuntimeEnds). */
  readonly runtimeStdio: Stdio;
  private stdinKeeper: number | undefined;
  private readonly readGuards: number[] = [];
  private runtimeEnds: number[];

  constructor(paths: StdioPaths) {
    const opened: number[] = [];
    try {
      const stdin = this.openStdin(paths.stdin, opened);
      const stdout = this.openOutput(paths.stdout, opened);
      const stderr = this.openOutput(paths.stderr, opened);
      this.runtimeStdio = [stdin, stdout, stderr];
      this.runtimeEnds = [stdin, stdout, stderr];
    } catch (err) {
      opened.forEach(closeQuietly);
      throw err;
    }
  }

  releaseRuntimeEnds(): void {
    this.runtimeEnds.forEach(closeQuietly);
    this.runtimeEnds = [];
  }

  closeStdin(): void {
    closeQuietly(this.stdinKeeper);
    this.stdinKeeper = undefined;
  }

  close(): void {
    this.releaseRuntimeEnds();
    this.closeStdin();
    this.readGuards.splice(0).forEach(closeQuietly);
  }

  private openStdin(path: string, opened: number[]): number {
    if (!path) return track(opened, openSync('/dev/null', O_RDONLY));
    const read = track(opened, openFifo(path, O_RDONLY));
    this.stdinKeeper = track(opened, openFifo(path, O_WRONLY));
    processNative.setBlocking(read, true);
    return read;
  }

  private openOutput(path: string, opened: number[]): number {
    if (!path) return track(opened, openSync('/dev/null', O_WRONLY));
    this.readGuards.push(track(opened, openFifo(path, O_RDONLY)));
    const write = track(opened, openFifo(path, O_WRONLY));
    processNative.setBlocking(write, true);
    return write;
  }
}

function track(opened: number[], fd: number): number {
  opened.push(fd);
  return fd;
}

/** /dev/null for all three: a terminal process gets the pty from the console socket instead. */
export function nullStdio(): { stdio: Stdio; close: () => void } {
  const fds: Stdio = [
    openSync('/dev/null', O_RDONLY),
    openSync('/dev/null', O_WRONLY),
    openSync('/dev/null', O_WRONLY),
  ];
  return { stdio: fds, close: () => fds.forEach(closeQuietly) };
}

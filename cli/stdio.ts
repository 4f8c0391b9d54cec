import { closeSync, constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { FifoSet } from './fifo.js';

const { O_RDONLY, O_RDWR, O_WRONLY, O_NONBLOCK } = constants;

/**
 * Our ends of a task's stdio FIFOs, wired to this process's stdio.
 *
 * Opening is the subtle part. A FIFO opened for reading sees EOF while no writer exists, and one
 * opened for writing fails (ENXIO) while no reader exists; the shim opens its ends only during
 * Tasks/Create. So each FIFO is first opened O_RDWR as a *keeper* (Linux never blocks that open
 * and it counts as both reader and writer), then our real end is opened non-blocking. Once the
 * task has started (the shim holds its ends) the keepers are released, so stdout/stderr reach EOF
 * exactly when the container closes them, and stdin reaches EOF when we stop writing.
 */
export class StdioAttachment {
  readonly #keepers: number[] = [];
  readonly #outputs: Socket[] = [];
  #input: Socket | undefined;
  #rawMode = false;
  /** Resolves when every output FIFO has reached EOF (the process exited and was drained). */
  readonly outputsDone: Promise<void>;
  /** Resolves when our stdin has ended and been flushed into the FIFO. */
  readonly inputDone: Promise<void>;

  constructor(fifos: FifoSet, terminal: boolean) {
    for (const path of [fifos.stdin, fifos.stdout, fifos.stderr]) if (path) this.#keepers.push(openSync(path, O_RDWR));
    const pending: Array<Promise<void>> = [];
    for (const [path, sink] of [
      [fifos.stdout, process.stdout],
      [fifos.stderr, process.stderr],
    ] as const) {
      if (!path) continue;
      const socket = new Socket({ fd: openSync(path, O_RDONLY | O_NONBLOCK), readable: true, writable: false });
      this.#outputs.push(socket);
      pending.push(new Promise((resolve) => socket.once('close', () => resolve())));
      socket.on('error', () => socket.destroy());
      socket.pipe(sink, { end: false });
      // Our reader went away (`berth run ... | head -1`): keep draining, or the container would
      // block on a full FIFO and never exit.
      sink.once('error', () => {
        socket.unpipe(sink);
        socket.resume();
      });
    }
    this.outputsDone = Promise.all(pending).then(() => undefined);
    this.inputDone = fifos.stdin ? this.#attachInput(fifos.stdin, terminal) : new Promise(() => undefined);
  }

  #attachInput(path: string, terminal: boolean): Promise<void> {
    const socket = new Socket({ fd: openSync(path, O_WRONLY | O_NONBLOCK), readable: false, writable: true });
    this.#input = socket;
    // A process that exits without reading its stdin makes our writes fail with EPIPE: not an error.
    socket.on('error', () => socket.destroy());
    if (terminal && process.stdin.isTTY) {
      // Raw: keystrokes (Ctrl-C included) go to the container's terminal, which echoes them.
      process.stdin.setRawMode(true);
      this.#rawMode = true;
    }
    process.stdin.pipe(socket);
    return new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Call once the task (or exec) has started: from then on EOF means what it says. */
  releaseKeepers(): void {
    for (const fd of this.#keepers.splice(0)) closeSync(fd);
  }

  close(): void {
    this.releaseKeepers();
    if (this.#rawMode) process.stdin.setRawMode(false);
    this.#rawMode = false;
    process.stdin.unpipe();
    process.stdin.pause();
    this.#input?.destroy();
    for (const socket of this.#outputs) socket.destroy();
  }
}

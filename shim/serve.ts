import { closeSync, writeSync } from 'node:fs';
import type { ShimArgs } from './args.js';
import { EventPublisher } from './events.js';
import { Lifecycle } from './lifecycle.js';
import { Reaper } from './reaper.js';
import { TASK_SERVICE } from './protocol.js';
import { TaskService } from './service.js';
import { TtrpcServer } from '../services/ttrpc/server.js';

/**
 * Idle time before a shim without tasks exits, so the group's next task can still reuse it: long
 * enough for a script's next `ctr run --rm` or a pod's next container, which otherwise pays for
 * a new shim (about 200 ms of CPU to start Node) instead of joining a warm one.
 */
const EXIT_GRACE_MS = 10_000;
/** How long an exiting shim keeps trying to deliver its last events. */
const FINAL_FLUSH_MS = 5_000;
/** `start` passes a pipe as fd 3 and waits for one byte on it. */
const READY_FD = 3;

/** Lines for the shim's log file (its stderr); `-debug` is accepted for the contract but adds nothing yet. */
function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

/** The long-lived shim: serves containerd.task.v2.Task on the group's socket until idle. */
export async function serveCommand(args: ShimArgs): Promise<void> {
  if (!args.socket) throw new Error('serve needs -socket');
  const socket = args.socket;
  // A bug hit by one task must not end the supervision of every task in the group: log, go on.
  process.on('uncaughtException', (err) => log(`uncaught exception: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (reason) => log(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));
  const reaper = new Reaper();
  const events = new EventPublisher(process.env.TTRPC_ADDRESS ?? '', log);
  const server = new TtrpcServer();
  let service: TaskService | undefined;
  const lifecycle = new Lifecycle(
    () => service?.taskCount ?? 0,
    () => {
      log(`no tasks left: exiting (${events.pendingCount} events to deliver)`);
      // The socket file goes now, before a new `start` could launch a shim on the same path;
      // connections close a turn later, so the answer to a Shutdown call still goes out.
      void server.stopListening();
      setImmediate(() => void server.close().then(() => events.flush(FINAL_FLUSH_MS)).then(() => process.exit(0)));
    },
    EXIT_GRACE_MS,
  );
  service = new TaskService({ namespace: args.namespace, reaper, events, lifecycle, log });
  server.register(TASK_SERVICE, service.handlers());
  await server.listen(socket);
  // The task that made `start` launch this shim keeps it alive until its Create arrives.
  lifecycle.reserve(args.id);
  log(`serving ${socket} for namespace ${args.namespace} (pid ${process.pid}, shim id ${events.shimId})`);
  writeSync(READY_FD, 'R');
  closeSync(READY_FD);
}

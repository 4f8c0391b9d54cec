import type { Api } from '../client.js';
import { startAttached } from '../attach.js';
import { deleteContainer, deleteTask, getContainer } from '../container.js';
import type { Context } from '../context.js';
import { CliError, isAlreadyExists } from '../errors.js';
import { createFifos, type FifoSet } from '../fifo.js';
import { generateId, validateId } from '../ids.js';
import { resolveImage, type ResolvedImage } from '../image.js';
import { withLease } from '../lease.js';
import { printJson } from '../output.js';
import { parseBind, parseCpus, parseEnv, parseMemory } from '../run-options.js';
import { buildSpec, type SpecInput } from '../spec.js';
import { StdioAttachment } from '../stdio.js';
import { DEFAULT_SNAPSHOTTER, SPEC_TYPE_URL, type Mount } from '../types.js';
import { ensureUnpacked } from '../unpack.js';
import { resolveUser } from '../user.js';

export interface RunOptions {
  detach?: boolean;
  rm?: boolean;
  tty?: boolean;
  interactive?: boolean;
  env: string[];
  mount: string[];
  memory?: string;
  cpus?: string;
  user?: string;
  net: 'none' | 'host';
  name?: string;
}

const RUNTIME = 'io.containerd.runc.v2';
const STOP_SIGNAL_LABEL = 'io.containerd.image.config.stop-signal';

/** Everything about the flags that can be wrong is checked before the daemon is asked anything. */
function specInputFromFlags(opts: RunOptions, id: string, namespace: string): Omit<SpecInput, 'config' | 'user'> {
  return {
    id,
    namespace,
    args: [],
    env: parseEnv(opts.env),
    terminal: Boolean(opts.tty),
    network: opts.net,
    binds: opts.mount.map(parseBind),
    ...(opts.memory !== undefined ? { memoryBytes: parseMemory(opts.memory) } : {}),
    ...(opts.cpus !== undefined ? { cpus: parseCpus(opts.cpus) } : {}),
  };
}

/**
 * Snapshot, spec and container record, under one lease so nothing is collected halfway (ctr's
 * NewContainer). The snapshot key is the container id, as with ctr.
 */
async function createContainer(api: Api, image: ResolvedImage, flags: Omit<SpecInput, 'config' | 'user'>, userSpec: string): Promise<void> {
  await withLease(api, async (lease) => {
    await ensureUnpacked(api, image, lease);
    const parent = image.chainIds[image.chainIds.length - 1] ?? '';
    try {
      await api.unary('snapshots', 'Prepare', { snapshotter: DEFAULT_SNAPSHOTTER, key: flags.id, parent }, { lease });
    } catch (err) {
      // The container's snapshot is keyed by its id: taken means the name is in use.
      if (isAlreadyExists(err)) throw new CliError(`container name "${flags.id}" is already in use in namespace "${api.namespace}"`);
      throw err;
    }
    try {
      const user = await resolveUser(api, flags.id, userSpec);
      const spec = buildSpec({ ...flags, config: image.config, user });
      await api.unary(
        'containers',
        'Create',
        {
          container: {
            id: flags.id,
            labels: { [STOP_SIGNAL_LABEL]: image.config.config?.StopSignal || 'SIGTERM' },
            image: image.image.name,
            runtime: { name: RUNTIME, options: { type_url: 'containerd.runc.v1.Options', value: Buffer.alloc(0) } },
            spec: { type_url: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) },
            snapshotter: DEFAULT_SNAPSHOTTER,
            snapshot_key: flags.id,
          },
        },
        { lease },
      );
    } catch (err) {
      await api.unary('snapshots', 'Remove', { snapshotter: DEFAULT_SNAPSHOTTER, key: flags.id }, { lease }).catch(() => undefined);
      throw err;
    }
  });
}

async function createTask(api: Api, id: string, fifos: FifoSet | undefined, terminal: boolean): Promise<void> {
  const { mounts = [] } = await api.unary<{ mounts?: Mount[] }>('snapshots', 'Mounts', { snapshotter: DEFAULT_SNAPSHOTTER, key: id });
  await api.unary('tasks', 'Create', {
    container_id: id,
    rootfs: mounts,
    stdin: fifos?.stdin ?? '',
    stdout: fifos?.stdout ?? '',
    stderr: fifos?.stderr ?? '',
    terminal,
  });
}

async function removeAll(api: Api, id: string): Promise<void> {
  await deleteTask(api, id).catch(() => undefined);
  await deleteContainer(api, await getContainer(api, id));
}

/** Detached: the task runs with /dev/null stdio and outlives us; print its id. */
async function runDetached(ctx: Context, id: string, terminal: boolean): Promise<number> {
  await createTask(ctx.api, id, undefined, terminal);
  const { pid = 0 } = await ctx.api.unary<{ pid?: number }>('tasks', 'Start', { container_id: id });
  if (ctx.json) printJson({ id, pid });
  else process.stdout.write(`${id}\n`);
  return 0;
}

/** Attached: stdio through FIFOs until the task exits; its status becomes ours. */
async function runAttached(ctx: Context, id: string, opts: RunOptions): Promise<number> {
  const terminal = Boolean(opts.tty);
  const fifos = await createFifos(id, { stdin: terminal || Boolean(opts.interactive), stderr: !terminal });
  try {
    const stdio = new StdioAttachment(fifos, terminal);
    try {
      await createTask(ctx.api, id, fifos, terminal);
    } catch (err) {
      stdio.close();
      throw err;
    }
    try {
      return await startAttached(ctx.api, { containerId: id }, stdio, terminal);
    } finally {
      await deleteTask(ctx.api, id).catch(() => undefined);
    }
  } finally {
    await fifos.remove();
  }
}

export async function runContainer(ctx: Context, imageName: string, command: string[], opts: RunOptions): Promise<number> {
  // berthd removes nothing by itself; with -d no berth process is left to do it at exit.
  if (opts.rm && opts.detach) throw new CliError('--rm cannot be combined with -d: nothing would remove the container when it exits');
  const id = opts.name !== undefined ? validateId('container name', opts.name) : generateId();
  const flags = { ...specInputFromFlags(opts, id, ctx.namespace), args: command };
  const image = await resolveImage(ctx.api, imageName);
  await createContainer(ctx.api, image, flags, opts.user ?? image.config.config?.User ?? '');
  let status: number;
  try {
    status = opts.detach ? await runDetached(ctx, id, flags.terminal) : await runAttached(ctx, id, opts);
  } catch (err) {
    if (opts.rm) await removeAll(ctx.api, id).catch(() => undefined);
    throw err;
  }
  if (opts.rm) await removeAll(ctx.api, id);
  // An exit code is one byte; runtimes already report a signal death as 128 + signal.
  return status & 0xff;
}

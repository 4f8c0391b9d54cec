import type { Api } from './client.js';
import { CliError, isNotFound, unlessNotFound } from './errors.js';
import type { OciSpec } from './spec.js';
import { DEFAULT_SNAPSHOTTER, type Container, type Process } from './types.js';

export async function getContainer(api: Api, id: string): Promise<Container> {
  try {
    return (await api.unary<{ container: Container }>('containers', 'Get', { id })).container;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`container "${id}" not found in namespace "${api.namespace}"`);
    throw err;
  }
}

/** The container's OCI spec: JSON inside the Any (api.md §3). */
export function containerSpec(container: Container): OciSpec {
  const value = container.spec?.value;
  if (!value?.length) throw new CliError(`container "${container.id}" has no runtime spec`);
  return JSON.parse(value.toString('utf8')) as OciSpec;
}

/** The container's task (its init process), or undefined when it has none. */
export async function getTask(api: Api, id: string): Promise<Process | undefined> {
  return (await unlessNotFound(() => api.unary<{ process?: Process }>('tasks', 'Get', { container_id: id })))?.process;
}

export const isStopped = (task: Process): boolean => task.status === 'STOPPED' || task.status === 'UNKNOWN' || (task.status === 'CREATED' && !task.pid);

/** Deletes an exited task (keeping nothing but its status, which is returned). */
export async function deleteTask(api: Api, id: string): Promise<number> {
  const res = await api.unary<{ exit_status?: number }>('tasks', 'Delete', { container_id: id });
  return res.exit_status ?? 0;
}

/** Container record and its snapshot; its task must already be gone. */
export async function deleteContainer(api: Api, container: Container): Promise<void> {
  await api.unary('containers', 'Delete', { id: container.id });
  if (container.snapshot_key) {
    const snapshotter = container.snapshotter || DEFAULT_SNAPSHOTTER;
    await unlessNotFound(() => api.unary('snapshots', 'Remove', { snapshotter, key: container.snapshot_key }));
  }
}

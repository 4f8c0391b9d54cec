import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { Metadata } from '../metadata/db.js';
import { BlobStore } from '../content/store.js';
import { ContentService } from '../content/service.js';
import { contentGrpc } from '../content/grpc.js';
import { ContainerService } from '../containers/service.js';
import { containersGrpc } from '../containers/grpc.js';
import { DiffService } from '../diff/service.js';
import { diffGrpc } from '../diff/grpc.js';
import { EventExchange } from '../events/exchange.js';
import { eventsGrpc } from '../events/grpc.js';
import { GarbageCollector } from '../gc/collector.js';
import { ImageService } from '../images/service.js';
import { imagesGrpc } from '../images/grpc.js';
import { pullGrpc } from '../images/pull/grpc.js';
import { PullService } from '../images/pull/service.js';
import { healthGrpc, introspectionGrpc, PLUGINS, versionGrpc } from '../introspection/grpc.js';
import { LeaseService } from '../leases/service.js';
import { leasesGrpc } from '../leases/grpc.js';
import { NamespaceService } from '../namespaces/service.js';
import { namespacesGrpc } from '../namespaces/grpc.js';
import { OverlayLayout } from '../snapshots/overlay.js';
import { SnapshotService } from '../snapshots/service.js';
import { snapshotsGrpc } from '../snapshots/grpc.js';
import { ShimManager } from '../runtime/shim-manager.js';
import { ShimEventsServer } from '../runtime/events-server.js';
import { BundleDirs } from '../tasks/bundle-dirs.js';
import { TaskService } from '../tasks/service.js';
import { tasksGrpc } from '../tasks/grpc.js';
import { handlerKit } from '../server/handlers.js';
import { startServer, type RegisteredService, type RunningServer } from '../server/server.js';
import type { DaemonConfig } from './config.js';

/** Every in-process service of one daemon; the gRPC layer, the CLI's local mode and tests use these. */
export interface Services {
  meta: Metadata;
  exchange: EventExchange;
  namespaces: NamespaceService;
  content: ContentService;
  snapshots: SnapshotService;
  images: ImageService;
  leases: LeaseService;
  diff: DiffService;
  containers: ContainerService;
  gc: GarbageCollector;
}

/** Root-only (or traverse-only), even when the directory already existed with looser bits. */
async function privateDir(dir: string, mode = 0o700): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

export async function openServices(root: string, log: Logger): Promise<Services> {
  await privateDir(root);
  const meta = new Metadata(join(root, 'metadata.db'));
  const exchange = new EventExchange(log.child({ component: 'events' }));
  meta.onEvent(exchange.publishPending);
  const blobs = new BlobStore(join(root, 'content'));
  await blobs.init();
  const layout = new OverlayLayout(join(root, 'snapshots', 'overlayfs'));
  await layout.init();
  const snapshots = new SnapshotService(meta, layout, log.child({ component: 'snapshots' }));
  const gc = new GarbageCollector(meta, blobs, snapshots, log.child({ component: 'gc' }));
  const content = new ContentService(meta, blobs, gc);
  return {
    meta,
    exchange,
    namespaces: new NamespaceService(meta),
    content,
    snapshots,
    images: new ImageService(meta, gc),
    leases: new LeaseService(meta, gc),
    diff: new DiffService(content, layout),
    containers: new ContainerService(meta, gc),
    gc,
  };
}

/** The server identity Introspection.Server reports; it survives restarts, as containerd's does. */
async function serverUuid(root: string): Promise<string> {
  const file = join(root, 'uuid');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const uuid = randomUUID();
    await writeFile(file, uuid, { mode: 0o600 });
    return uuid;
  }
}

export interface Daemon {
  services: Services;
  server: RunningServer;
  stop(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger): Promise<Daemon> {
  // Traverse-only for others, as containerd's state dir: a container whose root maps to an
  // unprivileged host uid must be able to reach its bundle's rootfs; nothing can be listed.
  await privateDir(config.state, 0o711);
  const services = await openServices(config.root, log);
  // A crash may have left snapshot directories without rows and blobs without records.
  await services.snapshots.cleanup();
  await services.gc.collect();

  const eventsAddress = `${config.address}.ttrpc`;
  const shimEvents = new ShimEventsServer(services.exchange, log.child({ component: 'shim-events' }));
  await shimEvents.listen(eventsAddress);
  const shims = new ShimManager({
    state: config.state,
    grpcAddress: config.address,
    eventsAddress,
    shimBinary: config.shimBinary,
    log: log.child({ component: 'shims' }),
  });
  const publish = (namespace: string, topic: string, typeName: string, event: object): void =>
    services.exchange.publishPending({ namespace, topic, typeName, event });
  const tasksLog = log.child({ component: 'tasks' });
  const tasks = new TaskService(services.containers, shims, new BundleDirs(config.state, tasksLog), publish, tasksLog);
  await tasks.load();

  const kit = handlerKit(log.child({ component: 'grpc' }));
  const registered: RegisteredService[] = [
    { name: 'containerd.services.version.v1.Version', impl: versionGrpc(kit) },
    { name: 'containerd.services.introspection.v1.Introspection', impl: introspectionGrpc(await serverUuid(config.root), PLUGINS, kit) },
    { name: 'grpc.health.v1.Health', impl: healthGrpc(kit) },
    { name: 'containerd.services.namespaces.v1.Namespaces', impl: namespacesGrpc(services.namespaces, kit) },
    { name: 'containerd.services.content.v1.Content', impl: contentGrpc(services.content, kit) },
    { name: 'containerd.services.images.v1.Images', impl: imagesGrpc(services.images, kit) },
    { name: 'containerd.services.leases.v1.Leases', impl: leasesGrpc(services.leases, kit) },
    { name: 'containerd.services.snapshots.v1.Snapshots', impl: snapshotsGrpc(services.snapshots, kit) },
    { name: 'containerd.services.diff.v1.Diff', impl: diffGrpc(services.diff, kit) },
    { name: 'containerd.services.events.v1.Events', impl: eventsGrpc(services.exchange, kit) },
    { name: 'berth.services.pull.v1.Pull', impl: pullGrpc(new PullService(services, {}, log.child({ component: 'pull' })), kit) },
    { name: 'containerd.services.containers.v1.Containers', impl: containersGrpc(services.containers, kit) },
    { name: 'containerd.services.tasks.v1.Tasks', impl: tasksGrpc(tasks, kit) },
  ];
  const server = await startServer(config.address, registered, log);
  return {
    services,
    server,
    stop: async () => {
      await server.shutdown(config.shutdownGraceMs);
      // Shims and their tasks outlive berthd by design: only our connections to them end.
      tasks.detach();
      await shims.closeAll();
      await shimEvents.close();
      await services.gc.schedule(true);
      await services.snapshots.removalsDone();
      await tasks.bundlesSettled();
      services.meta.close();
    },
  };
}

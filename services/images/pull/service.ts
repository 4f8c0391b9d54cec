import { BerthError, isBerthError } from '../../errors.js';
import type { ContentService } from '../../content/service.js';
import type { DiffService } from '../../diff/service.js';
import type { LeaseService } from '../../leases/service.js';
import type { Logger } from '../../log.js';
import { Authorizer } from '../../registry/auth.js';
import { DEFAULT_CLIENT_OPTIONS, RegistryClient, type ClientOptions } from '../../registry/client.js';
import { defaultDockerConfigPath, dockerConfigCredentials } from '../../registry/credentials.js';
import { DEFAULT_HOSTS_DIR, registryEndpoints } from '../../registry/hosts.js';
import { isIndex, isManifest, parseConfig, parseIndex, parseManifest, type Descriptor } from '../../registry/manifest.js';
import { hostPlatform, type Platform } from '../../registry/platform.js';
import { formatReference, parseReference } from '../../registry/reference.js';
import { selectManifests } from '../../registry/select.js';
import { SNAPSHOTTER, type SnapshotService } from '../../snapshots/service.js';
import { validateNamespace } from '../../validate.js';
import type { Image, ImageService } from '../service.js';
import type { PullContext } from './context.js';
import { ContentFetcher, type LayerFetch } from './fetch.js';
import { Inflight } from './inflight.js';
import { EXPIRE_LABEL, indexChildLabels, manifestChildLabels, snapshotRefLabel } from './labels.js';
import { Limiter } from './limit.js';
import type { LayerProgress, PullOptions } from './types.js';
import { Unpacker } from './unpack.js';

export interface PullDeps {
  content: ContentService;
  snapshots: SnapshotService;
  images: ImageService;
  leases: LeaseService;
  diff: DiffService;
}

export interface PullConfig {
  /** containerd-style certs.d directory with <host>/hosts.toml files. */
  hostsDir?: string;
  /** docker config.json with registry logins; $DOCKER_CONFIG or ~/.docker by default. */
  dockerConfig?: string;
  client?: Partial<ClientOptions>;
  /** Blobs downloaded at once across all pulls. */
  concurrency?: number;
}

const LEASE_HOURS = 24;
const DEFAULT_CONCURRENCY = 8;

interface ManifestPlan {
  configDesc: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
  unpack: boolean;
}

/**
 * Server-side pull, our `berth.services.pull.v1` API (not containerd 1.7's Transfer service:
 * ctr 1.6 cannot speak that, and a pull here is one call that streams progress). Stores exactly
 * what `ctr images pull` stores, under a lease that is dropped once the image record exists.
 */
export class PullService {
  private readonly fetcher: ContentFetcher;
  private readonly unpacker: Unpacker;
  private readonly authorizer: Authorizer;
  private readonly clientOptions: ClientOptions;

  constructor(
    private readonly deps: PullDeps,
    private readonly config: PullConfig,
    private readonly log: Logger,
  ) {
    this.clientOptions = { ...DEFAULT_CLIENT_OPTIONS, ...config.client };
    this.authorizer = new Authorizer(dockerConfigCredentials(config.dockerConfig ?? defaultDockerConfigPath()), this.clientOptions.stallMs);
    this.fetcher = new ContentFetcher(deps.content, deps.leases, new Inflight(), new Limiter(config.concurrency ?? DEFAULT_CONCURRENCY));
    this.unpacker = new Unpacker(deps.content, deps.snapshots, deps.diff, deps.leases, new Inflight());
  }

  async pull(namespace: string, reference: string, opts: PullOptions = {}, onProgress: (p: LayerProgress) => void = () => undefined): Promise<Image> {
    validateNamespace(namespace);
    const ref = parseReference(reference);
    this.deps.snapshots.checkSnapshotter(opts.snapshotter);
    const endpoints = await registryEndpoints(ref.domain, { hostsDir: this.config.hostsDir ?? DEFAULT_HOSTS_DIR, plainHttp: opts.plainHttp });
    // One failing layer stops the others: no point downloading what will be thrown away.
    const abort = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
    const client = new RegistryClient(ref, endpoints, this.authorizer, { ...this.clientOptions, signal });
    const expire = new Date(Date.now() + LEASE_HOURS * 3600_000).toISOString();
    const lease = this.deps.leases.create(namespace, undefined, { [EXPIRE_LABEL]: expire });
    const ctx: PullContext = { namespace, lease: lease.id, ref, client, progress: onProgress, signal };
    const fetches: LayerFetch[] = [];
    const started = Date.now();
    try {
      // Waits on another pull's work do not watch our signal; this does.
      const image = await untilAborted(this.run(ctx, opts, fetches), signal);
      await this.deps.leases.delete(namespace, lease.id);
      this.log.info('pulled', { ref: image.name, digest: image.target.digest, ms: Date.now() - started });
      return image;
    } catch (err) {
      abort.abort();
      await Promise.allSettled(fetches.filter((f) => f.owned).map((f) => f.done));
      // Synchronous collection: once the call fails, nothing of this pull is left in the store.
      await this.deps.leases.delete(namespace, lease.id, true).catch((e: unknown) => this.log.warn('pull lease cleanup failed', { error: String(e) }));
      throw err;
    } finally {
      await Promise.all(fetches.map((f) => f.close()));
    }
  }

  private async run(ctx: PullContext, opts: PullOptions, fetches: LayerFetch[]): Promise<Image> {
    const root = await ctx.client.resolve();
    const wanted: Platform[] = opts.platforms && opts.platforms.length > 0 ? opts.platforms : [hostPlatform()];
    let plans: ManifestPlan[];
    if (isIndex(root.descriptor.mediaType)) {
      const index = parseIndex(`index ${root.descriptor.digest}`, root.bytes, root.descriptor.mediaType);
      const chosen = selectManifests(index, wanted, opts.allPlatforms === true);
      const unpackFor = opts.allPlatforms === true ? unpackable(index.manifests, wanted) : chosen;
      await this.fetcher.storeSmall(ctx, 'index', root.descriptor, root.bytes, indexChildLabels(chosen.map((m) => m.digest)));
      plans = await Promise.all(chosen.map((m) => this.plan(ctx, m, undefined, unpackFor.includes(m))));
    } else if (isManifest(root.descriptor.mediaType)) {
      plans = [await this.plan(ctx, root.descriptor, root.bytes, true)];
    } else {
      throw new BerthError('FAILED_PRECONDITION', `${formatReference(ctx.ref)} is a ${root.descriptor.mediaType || 'document without media type'}, not an image manifest or index`);
    }
    const unpack = opts.unpack !== false;
    const byDigest = new Map<string, LayerFetch>();
    const follow = new Set<string>();
    for (const plan of plans) {
      if (!unpack || !plan.unpack) continue;
      const first = this.unpacker.firstMissing(ctx.namespace, plan.diffIds);
      for (const l of plan.layers.slice(first)) follow.add(l.digest);
    }
    for (const layer of plans.flatMap((p) => p.layers)) {
      if (byDigest.has(layer.digest)) continue;
      const fetch = this.fetcher.fetchLayer(ctx, layer, follow.has(layer.digest));
      byDigest.set(layer.digest, fetch);
      fetches.push(fetch);
    }
    for (const plan of plans) {
      if (!unpack || !plan.unpack) continue;
      const layers = plan.layers.map((desc, i) => ({ desc, diffId: plan.diffIds[i] ?? '', fetch: byDigest.get(desc.digest) as LayerFetch }));
      const top = await this.unpacker.unpack(ctx, layers);
      if (top === undefined) continue;
      const label = snapshotRefLabel(opts.snapshotter || SNAPSHOTTER, top);
      this.deps.content.update(ctx.namespace, plan.configDesc.digest, label, Object.keys(label).map((k) => `labels.${k}`));
    }
    await Promise.all(fetches.map((f) => f.done));
    return this.record(ctx, root.descriptor);
  }

  /** Fetches (or takes) a manifest and its config, and stores both. */
  private async plan(ctx: PullContext, desc: Descriptor, known: Buffer | undefined, unpack: boolean): Promise<ManifestPlan> {
    const bytes = known ?? (await this.fetcher.readSmall(ctx, desc));
    const manifest = parseManifest(`manifest ${desc.digest}`, bytes, desc.mediaType);
    const configBytes = await this.fetcher.readSmall(ctx, manifest.config);
    const config = parseConfig(`config ${manifest.config.digest}`, configBytes);
    if (config.diffIds.length !== manifest.layers.length) {
      throw new BerthError('FAILED_PRECONDITION', `manifest ${desc.digest} has ${manifest.layers.length} layers but its config lists ${config.diffIds.length} diff ids`);
    }
    const labels = manifestChildLabels(manifest.config.digest, manifest.layers.map((l) => l.digest));
    await this.fetcher.storeSmall(ctx, 'manifest', desc, bytes, labels);
    await this.fetcher.storeSmall(ctx, 'config', manifest.config, configBytes, {});
    return { configDesc: manifest.config, layers: manifest.layers, diffIds: config.diffIds, unpack };
  }

  /** Creates the image record, or re-points an existing one as ctr does on a re-pull. */
  private record(ctx: PullContext, target: Descriptor): Image {
    const image = { name: formatReference(ctx.ref), labels: {}, target: { mediaType: target.mediaType, digest: target.digest, size: target.size, annotations: {} } };
    try {
      return this.deps.images.create(ctx.namespace, image);
    } catch (err) {
      if (!isBerthError(err, 'ALREADY_EXISTS')) throw err;
      return this.deps.images.update(ctx.namespace, image);
    }
  }
}

/** With all platforms fetched, only the wanted ones are unpacked (none if the index lacks them). */
function unpackable(manifests: Descriptor[], wanted: Platform[]): Descriptor[] {
  try {
    return selectManifests({ mediaType: '', manifests }, wanted, false);
  } catch (err) {
    if (isBerthError(err, 'NOT_FOUND')) return [];
    throw err;
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new BerthError('CANCELLED', 'pull cancelled'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

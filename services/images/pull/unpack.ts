import { randomBytes } from 'node:crypto';
import { BerthError, isBerthError } from '../../errors.js';
import type { ContentService } from '../../content/service.js';
import { applyLayerStream } from '../../diff/apply-stream.js';
import type { DiffService } from '../../diff/service.js';
import type { LeaseService } from '../../leases/service.js';
import type { Descriptor } from '../../registry/manifest.js';
import { SNAPSHOTTER, type SnapshotService } from '../../snapshots/service.js';
import type { PullContext } from './context.js';
import type { LayerFetch } from './fetch.js';
import type { Inflight } from './inflight.js';
import { chainIds, UNCOMPRESSED_LABEL } from './labels.js';

export interface UnpackLayer {
  desc: Descriptor;
  diffId: string;
  fetch: LayerFetch;
}

/**
 * Unpacks an image's layers into overlayfs snapshots named by chain ID, bottom first: each layer
 * is applied as soon as its bytes arrive (its parent must be committed first, since a snapshot's
 * parent is fixed at Prepare) and committed only once its blob is verified and its diffID
 * matches the config, so a bad blob never leaves a committed snapshot.
 */
export class Unpacker {
  constructor(
    private readonly content: ContentService,
    private readonly snapshots: SnapshotService,
    private readonly diff: DiffService,
    private readonly leases: LeaseService,
    private readonly inflight: Inflight,
  ) {}

  /** The first layer whose snapshot is missing; everything below it is already unpacked. */
  firstMissing(namespace: string, diffIds: readonly string[]): number {
    const chains = chainIds(diffIds);
    for (let i = chains.length - 1; i >= 0; i--) {
      const chain = chains[i];
      if (chain !== undefined && this.snapshots.find(namespace, chain)?.kind === 'committed') return i + 1;
    }
    return 0;
  }

  /** Returns the top chain ID; undefined for an image without layers (nothing to unpack). */
  async unpack(ctx: PullContext, layers: readonly UnpackLayer[]): Promise<string | undefined> {
    const chains = chainIds(layers.map((l) => l.diffId));
    for (const [i, layer] of layers.entries()) {
      const chain = chains[i] ?? '';
      this.leases.addResource(ctx.namespace, ctx.lease, { type: `snapshots/${SNAPSHOTTER}`, id: chain });
      if (this.snapshots.find(ctx.namespace, chain)?.kind === 'committed') continue;
      const parent = chains[i - 1] ?? '';
      const run = (): ReturnType<Inflight['run']> => this.inflight.run(`${ctx.namespace}\0${chain}`, () => this.applyOne(ctx, layer, chain, parent));
      const first = run();
      // A concurrent pull unpacking this chain may be cancelled: then we unpack it ourselves.
      await (first.shared ? first.done.catch(() => run().done) : first.done);
    }
    return chains[chains.length - 1];
  }

  private async applyOne(ctx: PullContext, layer: UnpackLayer, chain: string, parent: string): Promise<void> {
    const { desc } = layer;
    const key = `extract-${BigInt(Date.now()) * 1_000_000n}-${randomBytes(2).toString('hex')} ${chain}`;
    const mounts = this.snapshots.prepare(ctx.namespace, key, parent, {}, ctx.lease);
    try {
      ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset: 0, total: desc.size, status: 'unpacking' });
      const target = this.diff.resolveTarget(mounts);
      let applied: { digest: string };
      try {
        applied = await applyLayerStream({ source: await layer.fetch.source(), mediaType: desc.mediaType, name: desc.digest, ...target, signal: ctx.signal });
      } catch (err) {
        // A broken download also breaks its unpack; the download's error is the one to report.
        throw (await layer.fetch.done.then(() => undefined, (e: unknown) => e)) ?? err;
      }
      await layer.fetch.done;
      if (applied.digest !== layer.diffId) {
        throw new BerthError('FAILED_PRECONDITION', `layer ${desc.digest}: wrong diff id calculated on extraction: got ${applied.digest}, the image config says ${layer.diffId}`);
      }
      this.snapshots.commit(ctx.namespace, chain, key, {}, ctx.lease);
    } catch (err) {
      await this.snapshots.remove(ctx.namespace, key).catch(() => undefined);
      // Someone else (a concurrent ctr) committed the same chain first: same content, done.
      if (!(isBerthError(err, 'ALREADY_EXISTS') && this.snapshots.find(ctx.namespace, chain))) throw err;
    }
    this.content.update(ctx.namespace, desc.digest, { [UNCOMPRESSED_LABEL]: layer.diffId }, [`labels.${UNCOMPRESSED_LABEL}`]);
    ctx.progress({ digest: desc.digest, mediaType: desc.mediaType, offset: desc.size, total: desc.size, status: 'unpacked' });
  }
}

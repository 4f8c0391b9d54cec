import { invalidArgument } from '../errors.js';
import type { ContentService } from '../content/service.js';
import type { OverlayLayout } from '../snapshots/overlay.js';
import type { MountSpec } from '../snapshots/types.js';
import { validateDigest } from '../validate.js';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { applyLayer, type ApplyLayerOptions } from './apply.js';
import { diffMounts } from './diff.js';

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

const UNCOMPRESSED_TAR = 'application/vnd.oci.image.layer.v1.tar';
const GZIP_TAR = 'application/vnd.oci.image.layer.v1.tar+gzip';
const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed';

export interface DiffRequest {
  lower: MountSpec[];
  upper: MountSpec[];
  mediaType: string;
  ref: string;
  labels: Record<string, string>;
}

type ApplyTarget = Pick<ApplyLayerOptions, 'target' | 'whiteouts' | 'parents'>;

function option(m: MountSpec, name: string): string | undefined {
  const prefix = `${name}=`;
  return m.options.find((o) => o.startsWith(prefix))?.slice(prefix.length);
}

/** The Diff service: applies layers to the mounts our snapshotter handed out. */
export class DiffService {
  constructor(
    private readonly content: ContentService,
    private readonly layout: OverlayLayout,
  ) {}

  /**
   * Mounts that came from our own Prepare are resolved to their directories, so a layer is written
   * straight into the snapshot (an overlay upperdir takes overlay-format whiteouts) with no mount.
   */
  resolveTarget(mounts: MountSpec[]): ApplyTarget {
    const [m] = mounts;
    if (mounts.length !== 1 || !m) throw invalidArgument(`apply needs exactly one mount, got ${mounts.length}`);
    if (m.type === 'bind' && this.layout.idOfFsDir(m.source) !== undefined && !m.options.includes('ro')) {
      return { target: m.source, whiteouts: 'delete' };
    }
    const upper = option(m, 'upperdir');
    if (m.type === 'overlay' && upper && this.layout.idOfFsDir(upper) !== undefined) {
      const lowers = (option(m, 'lowerdir') ?? '').split(':').filter(Boolean);
      if (lowers.some((dir) => this.layout.idOfFsDir(dir) === undefined)) {
        throw invalidArgument('overlay lowerdirs must be snapshots of this daemon');
      }
      return { target: upper, whiteouts: 'overlay', parents: lowers };
    }
    throw invalidArgument(`mount ${m.type} ${m.source} is not a writable snapshot of this daemon; prepare one with Snapshots.Prepare`);
  }

  async apply(namespace: string, layer: LayerDescriptor, mounts: MountSpec[], signal?: AbortSignal): Promise<LayerDescriptor> {
    validateDigest(layer.digest);
    const target = this.resolveTarget(mounts);
    const blob = this.content.blobPath(namespace, layer.digest);
    const applied = await applyLayer({ blob, mediaType: layer.mediaType, ...target, signal });
    return { mediaType: UNCOMPRESSED_TAR, digest: applied.digest, size: applied.size };
  }

  /** Writes the layer between two mount sets into the content store, as containerd's walking differ does. */
  async diff(namespace: string, req: DiffRequest, lease?: string): Promise<LayerDescriptor> {
    const mediaType = req.mediaType || GZIP_TAR;
    if (mediaType !== GZIP_TAR && mediaType !== UNCOMPRESSED_TAR) {
      throw invalidArgument(`diff media type "${mediaType}" is not supported; use ${GZIP_TAR} or ${UNCOMPRESSED_TAR}`);
    }
    const ref = req.ref || `diff-${randomBytes(8).toString('hex')}`;
    const writer = await this.content.writer(namespace, ref, 0, '', lease);
    try {
      const out = new Writable({
        write: (chunk: Buffer, _enc, done) => {
          writer.ingest.write(writer.ingest.offset, chunk).then(() => done(), done);
        },
      });
      const result = await diffMounts(req.lower, req.upper, out, { compression: mediaType === GZIP_TAR ? 'gzip' : 'none' });
      await new Promise<void>((resolve, reject) => (out.writableFinished ? resolve() : out.once('finish', resolve).once('error', reject)));
      const labels = { ...req.labels, [UNCOMPRESSED_LABEL]: result.diffId };
      const digest = await writer.commit(result.size, result.digest, labels);
      return { mediaType, digest, size: result.size };
    } finally {
      await writer.release();
    }
  }
}

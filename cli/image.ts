import { formatReference, parseReference } from '../services/registry/reference.js';
import type { Api } from './client.js';
import { readJsonBlob, sha256 } from './content.js';
import { CliError, isNotFound } from './errors.js';
import type { Descriptor, Image } from './types.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

export interface IndexJson {
  mediaType?: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: Platform; annotations?: Record<string, string> }>;
}

export interface ManifestJson {
  mediaType?: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

/** The parts of an OCI image config that shape a container (image-spec config.md). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    StopSignal?: string;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
}

export interface ResolvedImage {
  image: Image;
  manifestDescriptor: Descriptor;
  manifest: ManifestJson;
  config: ImageConfig;
  /** Chain ID of every layer, bottom first; the last names the unpacked top snapshot. */
  chainIds: string[];
}

export const isIndex = (mediaType: string | undefined): boolean => mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList;

const ARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le' };

/** The platform images run on here, in OCI terms. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: ARCH[process.arch] ?? process.arch };
}

/**
 * Finds an image record by what the user typed: the name as stored, else its normalized form
 * (`busybox` is stored as docker.io/library/busybox:latest by berth pull and ctr alike).
 */
export async function getImage(api: Api, name: string): Promise<Image> {
  const candidates = [name];
  try {
    const normalized = formatReference(parseReference(name));
    if (normalized !== name) candidates.push(normalized);
  } catch {
    // Not a reference (e.g. an imported name); only the literal name can match.
  }
  for (const candidate of candidates) {
    try {
      return (await api.unary<{ image: Image }>('images', 'Get', { name: candidate })).image;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  throw new CliError(`image "${name}" not found in namespace "${api.namespace}" (pull or import it first)`);
}

/** OCI image-spec identity: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diff : sha256(`${prev} ${diff}`));
  }
  return out;
}

/** The manifest for `platform` of an index (exact os/arch; a variant only when asked for). */
export function pickManifest(index: IndexJson, platform: Platform): IndexJson['manifests'][number] | undefined {
  return index.manifests.find(
    (m) =>
      m.platform?.os === platform.os &&
      m.platform?.architecture === platform.architecture &&
      (!platform.variant || m.platform?.variant === platform.variant),
  );
}

/** The manifest of `target` for this host, following an index if it is one. */
export async function resolveManifest(api: Api, name: string, target: Descriptor): Promise<{ descriptor: Descriptor; manifest: ManifestJson }> {
  if (!isIndex(target.media_type)) return { descriptor: target, manifest: await readJsonBlob<ManifestJson>(api, target.digest) };
  const index = await readJsonBlob<IndexJson>(api, target.digest);
  const platform = hostPlatform();
  const chosen = pickManifest(index, platform);
  if (!chosen) throw new CliError(`image "${name}" has no manifest for ${platform.os}/${platform.architecture}`);
  const descriptor = { media_type: chosen.mediaType, digest: chosen.digest, size: chosen.size };
  return { descriptor, manifest: await readJsonBlob<ManifestJson>(api, chosen.digest) };
}

/** Record, manifest, config and chain IDs of an image, everything `run` needs. */
export async function resolveImage(api: Api, name: string): Promise<ResolvedImage> {
  const image = await getImage(api, name);
  const { descriptor, manifest } = await resolveManifest(api, image.name, image.target);
  const config = await readJsonBlob<ImageConfig>(api, manifest.config.digest);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new CliError(`image "${image.name}": config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`);
  }
  return { image, manifestDescriptor: descriptor, manifest, config, chainIds: chainIds(diffIds) };
}

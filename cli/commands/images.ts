import { formatReference, parseReference } from '../../services/registry/reference.js';
import type { Api } from '../client.js';
import type { Context } from '../context.js';
import { readJsonBlob } from '../content.js';
import { CliError, isAlreadyExists, isNotFound } from '../errors.js';
import { getImage, hostPlatform, isIndex, resolveManifest, type IndexJson, type ImageConfig, type ManifestJson } from '../image.js';
import { age, humanSize, isoTime, printJson, printTable } from '../output.js';
import type { Image } from '../types.js';

interface ImageSummary {
  name: string;
  digest: string;
  mediaType: string;
  /** Manifest, config and layers of this host's platform, compressed, as pulled. */
  size: number | null;
  platforms: string[];
  createdAt: string;
}

/** A single manifest's platform is its config's; an index lists its manifests' platforms. */
async function platformsOf(api: Api, image: Image, manifest: ManifestJson): Promise<string[]> {
  if (!isIndex(image.target.media_type)) {
    const config = await readJsonBlob<ImageConfig>(api, manifest.config.digest);
    return [`${config.os ?? '?'}/${config.architecture ?? '?'}`];
  }
  const index = await readJsonBlob<IndexJson>(api, image.target.digest);
  return index.manifests.filter((m) => m.platform).map((m) => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/'));
}

/** A listing never fails on one image whose content is incomplete: its size shows as unknown. */
async function summarize(api: Api, image: Image): Promise<ImageSummary> {
  let size: number | null = null;
  let platforms: string[] = [];
  try {
    const { descriptor, manifest } = await resolveManifest(api, image.name, image.target);
    size = (descriptor.size ?? 0) + manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);
    platforms = await platformsOf(api, image, manifest);
  } catch (err) {
    if (!isNotFound(err) && !(err instanceof CliError)) throw err;
  }
  return {
    name: image.name,
    digest: image.target.digest,
    mediaType: image.target.media_type ?? '',
    size,
    platforms,
    createdAt: isoTime(image.created_at),
  };
}

export async function listImages(ctx: Context, opts: { quiet?: boolean }): Promise<void> {
  const { images = [] } = await ctx.api.unary<{ images?: Image[] }>('images', 'List', {});
  const sorted = [...images].sort((a, b) => a.name.localeCompare(b.name));
  if (opts.quiet && !ctx.json) return void process.stdout.write(sorted.map((i) => `${i.name}\n`).join(''));
  const summaries = await Promise.all(sorted.map((image) => summarize(ctx.api, image)));
  if (ctx.json) return printJson(summaries);
  printTable(
    ['REF', 'DIGEST', 'SIZE', 'PLATFORMS', 'CREATED'],
    summaries.map((s, i) => [
      s.name,
      s.digest.slice(0, 19),
      s.size === null ? '?' : humanSize(s.size),
      s.platforms.join(',') || '-',
      age(sorted[i]?.created_at),
    ]),
  );
}

export async function removeImages(ctx: Context, refs: string[]): Promise<void> {
  for (const ref of refs) {
    const image = await getImage(ctx.api, ref);
    await ctx.api.unary('images', 'Delete', { name: image.name });
    process.stdout.write(`${image.name}\n`);
  }
}

/** Image names are stored normalized, the way pull names them, so either spelling finds them. */
function normalizeName(ref: string): string {
  return formatReference(parseReference(ref));
}

export async function tagImage(ctx: Context, source: string, target: string, opts: { force?: boolean }): Promise<void> {
  const name = normalizeName(target);
  const src = await getImage(ctx.api, source);
  const record = { name, labels: src.labels ?? {}, target: src.target };
  try {
    await ctx.api.unary('images', 'Create', { image: record });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    if (!opts.force) throw new CliError(`image "${name}" already exists (use --force to replace it)`);
    await ctx.api.unary('images', 'Update', { image: record });
  }
  process.stdout.write(`${name}\n`);
}

export async function inspectImage(ctx: Context, ref: string): Promise<void> {
  const image = await getImage(ctx.api, ref);
  const { descriptor, manifest } = await resolveManifest(ctx.api, image.name, image.target);
  const config = await readJsonBlob<ImageConfig>(ctx.api, manifest.config.digest);
  printJson({
    name: image.name,
    target: image.target,
    labels: image.labels ?? {},
    createdAt: isoTime(image.created_at),
    updatedAt: isoTime(image.updated_at),
    platform: hostPlatform(),
    manifestDescriptor: descriptor,
    manifest,
    config,
  });
}

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { formatReference, parseReference } from '../../services/registry/reference.js';
import type { Api } from '../client.js';
import type { Context } from '../context.js';
import { extractArchive } from '../archive.js';
import { bufferSource, streamSource, writeBlob, type BlobSource } from '../content.js';
import { CliError, isAlreadyExists } from '../errors.js';
import { chainIds, hostPlatform, isIndex, MEDIA, pickManifest, type ImageConfig, type IndexJson, type ManifestJson } from '../image.js';
import { withLease } from '../lease.js';
import type { Descriptor } from '../types.js';
import { ensureUnpacked } from '../unpack.js';

export interface ImportOptions {
  name?: string;
  unpack: boolean;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** An image found in the archive: its name, root descriptor and the blobs to store for it. */
interface Candidate {
  name: string;
  target: Descriptor;
}

/**
 * Blobs by digest, with the gc.ref labels that make the image keep its children (api.md §3), in
 * the order they are written: children before their parents, so no stored blob's gc.ref ever
 * points at nothing.
 */
interface Store {
  blobs: Map<string, { source: BlobSource; labels: Record<string, string> }>;
}

function fileSource(path: string, digest: string, size: number): BlobSource {
  return streamSource(digest, size, () => createReadStream(path, { highWaterMark: 1024 * 1024 }));
}

function normalizeName(name: string): string {
  try {
    return formatReference(parseReference(name));
  } catch {
    throw new CliError(`image name "${name}" is not a valid reference`);
  }
}

// ---- OCI image layout ------------------------------------------------------------------------

async function layoutBlob(dir: string, digest: string): Promise<{ path: string; size: number } | undefined> {
  if (!DIGEST.test(digest)) throw new CliError(`archive: invalid digest "${digest}"`);
  const path = join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? { path, size: info.size } : undefined;
}

async function requireBlob(dir: string, digest: string): Promise<{ path: string; size: number }> {
  const blob = await layoutBlob(dir, digest);
  if (!blob) throw new CliError(`archive: blob ${digest} is missing`);
  return blob;
}

/** Adds a manifest, its config and layers to `store`, labelled as ctr labels pulled content. */
async function addManifest(dir: string, digest: string, store: Store): Promise<void> {
  const { path, size } = await requireBlob(dir, digest);
  const manifest = JSON.parse(await readFile(path, 'utf8')) as ManifestJson;
  const labels: Record<string, string> = { 'containerd.io/gc.ref.content.config': manifest.config.digest };
  manifest.layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  for (const child of [manifest.config, ...manifest.layers]) {
    const blob = await requireBlob(dir, child.digest);
    store.blobs.set(child.digest, { source: fileSource(blob.path, child.digest, blob.size), labels: {} });
  }
  store.blobs.set(digest, { source: fileSource(path, digest, size), labels });
}

/** An index keeps the manifests the archive holds; the others are dropped from its labels. */
async function addIndex(dir: string, digest: string, store: Store): Promise<void> {
  const { path, size } = await requireBlob(dir, digest);
  const index = JSON.parse(await readFile(path, 'utf8')) as IndexJson;
  const labels: Record<string, string> = {};
  for (const [i, m] of index.manifests.entries()) {
    if (!(await layoutBlob(dir, m.digest))) continue;
    labels[`containerd.io/gc.ref.content.m.${i}`] = m.digest;
    await (isIndex(m.mediaType) ? addIndex(dir, m.digest, store) : addManifest(dir, m.digest, store));
  }
  store.blobs.set(digest, { source: fileSource(path, digest, size), labels });
}

function layoutName(annotations: Record<string, string> | undefined, opts: ImportOptions): string | undefined {
  const full = annotations?.['io.containerd.image.name'];
  if (full) return full;
  const ref = annotations?.['org.opencontainers.image.ref.name'];
  // A bare tag ("latest") names nothing by itself; with --name it tags that repository.
  if (ref && /[/:]/.test(ref)) return ref;
  if (opts.name) return ref ? `${opts.name.replace(/:[^/]*$/, '')}:${ref}` : opts.name;
  return undefined;
}

async function readLayout(dir: string, opts: ImportOptions, store: Store): Promise<Candidate[]> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
  const out: Candidate[] = [];
  for (const m of index.manifests) {
    const name = layoutName(m.annotations, opts);
    if (!name) throw new CliError(`archive: image ${m.digest} has no name; give one with --name`);
    await (isIndex(m.mediaType) ? addIndex(dir, m.digest, store) : addManifest(dir, m.digest, store));
    out.push({ name: normalizeName(name), target: { media_type: m.mediaType, digest: m.digest, size: m.size } });
  }
  return out;
}

// ---- docker-archive (docker save) ------------------------------------------------------------

interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function isGzip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await file.close();
  }
}

function archivePath(dir: string, name: string): string {
  const rel = normalize(name);
  if (rel.startsWith('..') || rel.startsWith('/')) throw new CliError(`archive: path "${name}" points outside the archive`);
  return join(dir, rel);
}

/** docker save has no manifests: build the schema 2 manifest docker would have pushed. */
async function readDockerArchive(dir: string, opts: ImportOptions, store: Store): Promise<Candidate[]> {
  const entries = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DockerArchiveEntry[];
  const out: Candidate[] = [];
  for (const entry of entries) {
    const configPath = archivePath(dir, entry.Config);
    const config = { ...(await hashFile(configPath)), mediaType: MEDIA.dockerConfig };
    store.blobs.set(config.digest, { source: fileSource(configPath, config.digest, config.size), labels: {} });
    const layers = [];
    for (const layer of entry.Layers) {
      const path = archivePath(dir, layer);
      const hashed = await hashFile(path);
      const mediaType = (await isGzip(path)) ? MEDIA.dockerLayerGzip : MEDIA.dockerLayer;
      store.blobs.set(hashed.digest, { source: fileSource(path, hashed.digest, hashed.size), labels: {} });
      layers.push({ mediaType, digest: hashed.digest, size: hashed.size });
    }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config, layers }),
    );
    const source = bufferSource(manifest);
    const labels: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest };
    layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
    store.blobs.set(source.digest, { source, labels });
    const target = { media_type: MEDIA.dockerManifest, digest: source.digest, size: source.size };
    const names = entry.RepoTags?.length ? entry.RepoTags : opts.name ? [opts.name] : [];
    if (!names.length) throw new CliError(`archive: image ${config.digest} has no tag; give one with --name`);
    for (const name of names) out.push({ name: normalizeName(name), target });
  }
  return out;
}

// ---- storing -----------------------------------------------------------------------------------

async function createOrUpdateImage(api: Api, image: Candidate, lease: string): Promise<void> {
  const record = { name: image.name, target: image.target };
  try {
    await api.unary('images', 'Create', { image: record }, { lease });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    await api.unary('images', 'Update', { image: record }, { lease });
  }
}

/** The host platform's manifest of an imported image, to unpack it. */
async function unpackable(store: Store, target: Descriptor): Promise<{ manifest: ManifestJson; config: ImageConfig; chainIds: string[] } | undefined> {
  const readJson = async <T>(digest: string): Promise<T> => {
    const chunks: Buffer[] = [];
    const blob = store.blobs.get(digest);
    if (!blob) throw new CliError(`archive: blob ${digest} is missing`);
    for await (const chunk of blob.source.chunks()) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  };
  let digest = target.digest;
  if (isIndex(target.media_type)) {
    const chosen = pickManifest(await readJson<IndexJson>(digest), hostPlatform());
    if (!chosen || !store.blobs.has(chosen.digest)) return undefined;
    digest = chosen.digest;
  }
  const manifest = await readJson<ManifestJson>(digest);
  const config = await readJson<ImageConfig>(manifest.config.digest);
  return { manifest, config, chainIds: chainIds(config.rootfs?.diff_ids ?? []) };
}

/**
 * Imports images from an OCI layout tarball (index.json) or a docker-archive (manifest.json),
 * client-side over Content/Write and Images, then unpacks this platform's layers as ctr import
 * does. Everything is written under one lease, so a failed import leaves nothing behind.
 */
export async function importImages(ctx: Context, file: string, opts: ImportOptions): Promise<void> {
  if (file !== '-' && !existsSync(file)) throw new CliError(`archive ${file}: no such file`);
  const dir = await mkdtemp(join(tmpdir(), 'berth-import-'));
  try {
    await extractArchive(file, dir);
    const store: Store = { blobs: new Map() };
    let images: Candidate[];
    if (existsSync(join(dir, 'index.json'))) images = await readLayout(dir, opts, store);
    else if (existsSync(join(dir, 'manifest.json'))) images = await readDockerArchive(dir, opts, store);
    else throw new CliError(`archive ${file}: neither an OCI layout (index.json) nor a docker archive (manifest.json)`);
    await withLease(ctx.api, async (lease) => {
      for (const [digest, blob] of store.blobs) {
        await writeBlob(ctx.api, `import-${digest}`, blob.source, blob.labels, { lease });
      }
      for (const image of images) {
        await createOrUpdateImage(ctx.api, image, lease);
        const target = opts.unpack ? await unpackable(store, image.target) : undefined;
        if (target) await ensureUnpacked(ctx.api, target, lease);
      }
    });
    for (const image of images) process.stdout.write(`${image.name}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

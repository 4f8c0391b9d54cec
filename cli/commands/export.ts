import type { Api } from '../client.js';
import type { Context } from '../context.js';
import { ArchiveWriter } from '../archive.js';
import { blobChunks } from '../content.js';
import { getImage, MEDIA, resolveManifest } from '../image.js';
import type { Descriptor } from '../types.js';

interface Exported {
  name: string;
  manifest: Descriptor;
  config: string;
  layers: string[];
}

const blobPath = (digest: string): string => `blobs/${digest.replace(':', '/')}`;

/** The reference's tag, for the OCI ref.name annotation ("latest" of busybox:latest). */
function tagOf(name: string): string | undefined {
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > lastSlash && !name.includes('@') ? name.slice(colon + 1) : undefined;
}

async function collect(api: Api, ref: string, blobs: Map<string, number>): Promise<Exported> {
  const image = await getImage(api, ref);
  // One platform per image (this host's): the archive then holds every blob it references.
  const { descriptor, manifest } = await resolveManifest(api, image.name, image.target);
  blobs.set(descriptor.digest, descriptor.size ?? 0);
  blobs.set(manifest.config.digest, manifest.config.size);
  for (const layer of manifest.layers) blobs.set(layer.digest, layer.size);
  return { name: image.name, manifest: descriptor, config: manifest.config.digest, layers: manifest.layers.map((l) => l.digest) };
}

/**
 * Writes an OCI image layout tarball (oci-layout, index.json, blobs/sha256/*) with a docker
 * manifest.json beside it, so both `berth images import`/`ctr import` and `docker load` read it.
 */
export async function exportImages(ctx: Context, file: string, refs: string[]): Promise<void> {
  const blobs = new Map<string, number>();
  const images: Exported[] = [];
  for (const ref of refs) images.push(await collect(ctx.api, ref, blobs));
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: images.map((img) => {
      const tag = tagOf(img.name);
      return {
        mediaType: img.manifest.media_type,
        digest: img.manifest.digest,
        size: img.manifest.size,
        annotations: { 'io.containerd.image.name': img.name, ...(tag ? { 'org.opencontainers.image.ref.name': tag } : {}) },
      };
    }),
  };
  const dockerManifest = images.map((img) => ({ Config: blobPath(img.config), RepoTags: tagOf(img.name) ? [img.name] : [], Layers: img.layers.map(blobPath) }));
  const archive = new ArchiveWriter(file);
  await archive.add('oci-layout', 30, Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  for (const [digest, size] of blobs) await archive.add(blobPath(digest), size, blobChunks(ctx.api, digest));
  const indexJson = Buffer.from(JSON.stringify(index));
  await archive.add('index.json', indexJson.length, indexJson);
  const manifestJson = Buffer.from(JSON.stringify(dockerManifest));
  await archive.add('manifest.json', manifestJson.length, manifestJson);
  await archive.finish();
  if (file !== '-') for (const img of images) process.stdout.write(`${img.name}\n`);
}

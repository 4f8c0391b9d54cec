import { BerthError } from '../../services/errors.js';
import { Authorizer } from '../../services/registry/auth.js';
import { DEFAULT_CLIENT_OPTIONS, RegistryClient } from '../../services/registry/client.js';
import { defaultDockerConfigPath, dockerConfigCredentials } from '../../services/registry/credentials.js';
import { DEFAULT_HOSTS_DIR, registryEndpoints } from '../../services/registry/hosts.js';
import type { Descriptor } from '../../services/registry/manifest.js';
import { formatPlatform, parsePlatform } from '../../services/registry/platform.js';
import { ImagePusher, planPush, type PushProgress, type PushSource } from '../../services/registry/push.js';
import { formatReference, manifestReference, parseReference } from '../../services/registry/reference.js';
import type { Api } from '../client.js';
import { blobChunks, readBlob } from '../content.js';
import type { Context } from '../context.js';
import { CliError, unlessNotFound } from '../errors.js';
import { getImage } from '../image.js';
import { printJson } from '../output.js';
import type { Image } from '../types.js';

export interface PushOptions {
  plainHttp?: boolean;
  platform?: string;
  allPlatforms?: boolean;
}

/** berthd's content store over Content/Info and Content/Read, as ctr reads it to push. */
function contentSource(api: Api): PushSource {
  return {
    has: async (digest) => (await unlessNotFound(() => api.unary('content', 'Info', { digest }))) !== undefined,
    read: (digest) => readBlob(api, digest),
    open: (digest) => blobChunks(api, digest),
  };
}

function targetOf(image: Image): Descriptor {
  const { media_type: mediaType, digest, size } = image.target;
  if (!mediaType || size === undefined) throw new CliError(`image "${image.name}": its record has no media type or size for ${digest}`);
  return { mediaType, digest, size };
}

function progressLine(p: PushProgress): string {
  return `${p.kind} ${p.descriptor.digest}: ${p.status}\n`;
}

/**
 * Pushes an image client-side, as ctr does (containerd's v1 API has no push): the record from
 * Images/Get, the bytes from Content/Read, uploaded straight to the registry. `local` names the
 * image to push when it is stored under another name than `ref`.
 */
export async function pushImage(ctx: Context, ref: string, local: string | undefined, opts: PushOptions): Promise<void> {
  try {
    await push(ctx, ref, local, opts);
  } catch (err) {
    // The registry client's errors already say where and what; their class is for berthd's gRPC.
    throw err instanceof BerthError ? new CliError(err.message) : err;
  }
}

async function push(ctx: Context, ref: string, local: string | undefined, opts: PushOptions): Promise<void> {
  const target = parseReference(ref);
  if (opts.platform && opts.allPlatforms) throw new CliError('--platform and --all-platforms exclude each other');
  const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
  const image = await getImage(ctx.api, local ?? ref);
  const source = contentSource(ctx.api);
  const plan = await planPush(source, targetOf(image), { ...(platform ? { platform } : {}), allPlatforms: Boolean(opts.allPlatforms) });
  const top = plan.manifests[plan.manifests.length - 1]?.descriptor;
  if (!top) throw new CliError(`image "${image.name}": nothing to push`);
  if (target.digest && target.digest !== top.digest) throw new CliError(`${ref}: the image to push is ${top.digest}, not the digest the reference names`);

  const endpoints = await registryEndpoints(target.domain, { hostsDir: DEFAULT_HOSTS_DIR, plainHttp: Boolean(opts.plainHttp) });
  const auth = new Authorizer(dockerConfigCredentials(defaultDockerConfigPath()), DEFAULT_CLIENT_OPTIONS.stallMs);
  const client = new RegistryClient(target, endpoints, auth, DEFAULT_CLIENT_OPTIONS, ['pull', 'push']);
  const done: PushProgress[] = [];
  if (!ctx.json) {
    for (const s of plan.skipped) process.stderr.write(`manifest ${s.digest}${s.platform ? ` (${formatPlatform(s.platform)})` : ''}: skipped, not in the local store\n`);
  }
  await new ImagePusher(client, source, (p) => {
    done.push(p);
    if (!ctx.json) process.stderr.write(progressLine(p));
  }).push(plan, manifestReference(target));

  const name = formatReference(target);
  if (ctx.json) {
    printJson({
      name,
      target: { media_type: top.mediaType, digest: top.digest, size: top.size },
      pushed: done.map((p) => ({ kind: p.kind, digest: p.descriptor.digest, size: p.descriptor.size, status: p.status })),
      skipped: plan.skipped.map((s) => s.digest),
    });
  } else process.stdout.write(`${name}: ${top.digest}\n`);
}

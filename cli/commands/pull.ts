import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { printJson } from '../output.js';
import { createProgressView } from '../progress.js';
import type { Image, PullProgress } from '../types.js';

export interface PullOptions {
  plainHttp?: boolean;
  platform: string[];
  allPlatforms?: boolean;
}

function parsePlatform(text: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) throw new CliError(`platform "${text}": want os/arch[/variant], e.g. linux/amd64`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Pulls through berthd's own streaming Pull API (docs/pull.md): the daemon fetches and unpacks. */
export async function pullImage(ctx: Context, ref: string, opts: PullOptions): Promise<void> {
  const request = {
    ref,
    platforms: opts.platform.map(parsePlatform),
    all_platforms: Boolean(opts.allPlatforms),
    plain_http: Boolean(opts.plainHttp),
  };
  // JSON output is for scripts: no progress on stdout, only the final record.
  const view = ctx.json ? undefined : createProgressView(process.stderr);
  let image: Image | undefined;
  try {
    for await (const msg of ctx.api.stream<PullProgress>('pull', 'Pull', request)) {
      if (msg.layer) view?.update(msg.layer);
      if (msg.image) image = msg.image;
    }
  } finally {
    view?.stop();
  }
  if (!image) throw new CliError(`pull ${ref}: the daemon ended the pull without an image record`);
  if (ctx.json) printJson({ name: image.name, target: image.target });
  else process.stdout.write(`${image.name}: ${image.target.digest}\n`);
}

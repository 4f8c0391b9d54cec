import { parseReference } from '../../services/registry/reference.js';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { getImage } from '../image.js';

/**
 * berthd's registry client only pulls (services/registry/), and containerd's v1 API has no push
 * either (ctr pushes client-side). Rather than pretend, push checks what it would push and says so.
 */
export async function pushImage(ctx: Context, ref: string): Promise<void> {
  parseReference(ref);
  await getImage(ctx.api, ref);
  throw new CliError('push is not available yet: berthd has no push API (its registry client only pulls); export the image with `berth images export` instead');
}

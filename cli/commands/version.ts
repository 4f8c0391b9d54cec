import { VERSION } from '../../services/version.js';
import type { Context } from '../context.js';
import { printJson } from '../output.js';

interface VersionResponse {
  version?: string;
  revision?: string;
}

/** The client's version is printed before the daemon is asked, so it shows even when that fails. */
export async function printVersion(ctx: Context): Promise<void> {
  if (!ctx.json) process.stdout.write(`Client:\n  Version:  ${VERSION}\n\n`);
  const server = await ctx.api.unary<VersionResponse>('version', 'Version', {});
  if (ctx.json) {
    printJson({ client: { version: VERSION }, server: { version: server.version ?? '', revision: server.revision ?? '' } });
    return;
  }
  process.stdout.write(`Server:\n  Version:  ${server.version ?? ''}\n  Revision: ${server.revision ?? ''}\n`);
}

import { VERSION } from '../../services/version.js';
import type { Context } from '../context.js';
import { printJson } from '../output.js';

interface VersionResponse {
  version?: string;
  revision?: string;
}

export async function printVersion(ctx: Context): Promise<void> {
  const server = await ctx.api.unary<VersionResponse>('version', 'Version', {});
  if (ctx.json) {
    printJson({ client: { version: VERSION }, server: { version: server.version ?? '', revision: server.revision ?? '' } });
    return;
  }
  process.stdout.write(
    `Client:\n  Version:  ${VERSION}\n\nServer:\n  Version:  ${server.version ?? ''}\n  Revision: ${server.revision ?? ''}\n`,
  );
}

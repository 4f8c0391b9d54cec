import { parseArgs } from './args.js';
import { deleteCommand } from './delete.js';
import { serveCommand } from './serve.js';
import { startCommand } from './start.js';

/**
 * berth-shim: containerd's runtime v2 shim contract. `start` and `delete` are what a daemon runs;
 * `serve` is the long-lived shim that `start` launches.
 */
async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  switch (args.action) {
    case 'start':
      return startCommand(args);
    case 'delete':
      return deleteCommand(args);
    case 'serve':
      return serveCommand(args);
    default:
      throw new Error(`unknown action ${JSON.stringify(args.action)} (want start, delete or serve)`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`berth-shim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

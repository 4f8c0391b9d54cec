import { parseArgs } from './args.js';

/**
 * berth-shim: containerd's runtime v2 shim contract. `start` and `delete` are what a daemon runs;
 * `serve` is the long-lived shim that `start` launches. Each action loads only its own modules,
 * because `start` and `delete` are short-lived processes on the task-creation path.
 */
async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  switch (args.action) {
    case 'start':
      return (await import('./start.js')).startCommand(args);
    case 'delete':
      return (await import('./delete.js')).deleteCommand(args);
    case 'serve':
      return (await import('./serve.js')).serveCommand(args);
    case 'spare':
      return (await import('./spare.js')).spareCommand();
    default:
      throw new Error(`unknown action ${JSON.stringify(args.action)} (want start, delete, serve or spare)`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`berth-shim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

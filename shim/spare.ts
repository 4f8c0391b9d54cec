import { parseArgs, type ShimArgs } from './args.js';

/** Reads the one line berthd writes when it hands this spare a group: the serve command line. */
async function readAssignment(): Promise<string[] | undefined> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    const newline = text.indexOf('\n');
    if (newline >= 0) return JSON.parse(text.slice(0, newline)) as string[];
  }
  return undefined;
}

/**
 * `berth-shim spare`: a shim started ahead of need, with its modules already loaded, that waits
 * for berthd to name the group it serves, then serves exactly as `start` would have launched it.
 * It saves a new pod or namespace the Node start-up (about 100 ms here). If berthd goes away
 * first, stdin ends and the spare exits without ever serving.
 */
export async function spareCommand(): Promise<void> {
  const { serveCommand } = await import('./serve.js');
  const argv = await readAssignment();
  if (!argv) process.exit(0);
  const args: ShimArgs = parseArgs(argv);
  if (args.action !== 'serve') throw new Error(`a spare shim can only serve (got ${JSON.stringify(args.action)})`);
  process.stdin.destroy();
  await serveCommand(args);
}

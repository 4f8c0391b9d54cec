import { createLogger } from '../log.js';
import { VERSION } from '../version.js';
import { ConfigError, parseDaemonArgs, USAGE } from './config.js';
import { startDaemon } from './daemon.js';

async function main(): Promise<void> {
  const parsed = parseDaemonArgs(process.argv.slice(2));
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`berthd ${VERSION}\n`);
    return;
  }
  const { config } = parsed;
  const log = createLogger(config.logLevel);
  process.umask(0o077);
  const daemon = await startDaemon(config, log);
  log.info('berthd started', { version: VERSION, root: config.root, state: config.state, pid: process.pid });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping: draining in-flight calls', { signal });
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('stop failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`berthd: ${message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});

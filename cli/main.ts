import { Command, CommanderError, Option } from 'commander';
import type { Context, GlobalOptions } from './context.js';

/**
 * The berth command line. Arguments are parsed with commander rather than util.parseArgs: berth
 * has nested subcommands (`images ls`), per-command help, repeatable options, and `run IMAGE CMD
 * ARGS...` must stop parsing at the image so `sh -c` reaches the container — commander does all
 * of that (passThroughOptions) and weighs ~50 KB in the bundle. Only this file and commander load
 * at start-up: each action imports its command module (and with it grpc-js and the protos) when
 * it runs, so `berth --help` and argument errors stay cheap.
 */

const DEFAULT_ADDRESS = '/run/berth/berth.sock';
const DEFAULT_NAMESPACE = 'default';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** -n and --json are accepted after the subcommand too (`berth ps --json`); they win over globals. */
function withLocalGlobals(cmd: Command): Command {
  return cmd.option('-n, --namespace <name>', 'namespace (overrides the global option)').option('--json', 'print JSON');
}

function globalsOf(cmd: Command): GlobalOptions {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  const merged: Partial<GlobalOptions> = {};
  for (const c of chain) {
    const o = c.opts<Partial<GlobalOptions>>();
    if (o.address !== undefined) merged.address = o.address;
    if (o.namespace !== undefined) merged.namespace = o.namespace;
    if (o.json !== undefined) merged.json = o.json;
  }
  return {
    address: merged.address ?? DEFAULT_ADDRESS,
    namespace: merged.namespace ?? DEFAULT_NAMESPACE,
    json: merged.json ?? false,
  };
}

/**
 * Runs one command with a fresh context; its result (if a number) becomes the exit code. A
 * failure is printed as one line ("berth: ..."), with the stack only when BERTH_DEBUG=1.
 */
async function execute(cmd: Command, body: (ctx: Context) => Promise<number | void>): Promise<void> {
  const { Context } = await import('./context.js');
  const ctx = new Context(globalsOf(cmd));
  try {
    process.exitCode = (await body(ctx)) ?? 0;
  } catch (err) {
    const { describeError } = await import('./errors.js');
    process.stderr.write(`berth: ${describeError(err, ctx.options.address)}\n`);
    if (process.env.BERTH_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    // 1 for every failure, as ctr does; only run and exec pass another process's status on.
    process.exitCode = 1;
  } finally {
    ctx.close();
  }
}

function imagesCommands(program: Command): void {
  const images = program.command('images').alias('image').alias('i').description('manage images');
  withLocalGlobals(images.command('ls', { isDefault: true }).alias('list').description('list images'))
    .option('-q, --quiet', 'print only names')
    .action((opts: { quiet?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/images.js')).listImages(ctx, opts)),
    );
  withLocalGlobals(images.command('rm <ref...>').alias('remove').description('remove images'))
    .action((refs: string[], _opts: object, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/images.js')).removeImages(ctx, refs)),
    );
  withLocalGlobals(images.command('tag <source> <target>').description('give an image another name'))
    .option('-f, --force', 'replace an existing image of that name')
    .action((source: string, target: string, opts: { force?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/images.js')).tagImage(ctx, source, target, opts)),
    );
  withLocalGlobals(images.command('inspect <ref>').description('print an image record, manifest and config as JSON'))
    .action((ref: string, _opts: object, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/images.js')).inspectImage(ctx, ref)),
    );
  withLocalGlobals(images.command('import <file>').description('import an OCI layout or docker-archive tarball ("-" reads stdin)'))
    .option('--name <ref>', 'name for an image the archive does not name')
    .option('--no-unpack', 'store the content without unpacking layers into snapshots')
    .action((file: string, opts: { name?: string; unpack: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/import.js')).importImages(ctx, file, opts)),
    );
  withLocalGlobals(images.command('export <file> <ref...>').description('export images as an OCI layout tarball ("-" writes stdout)'))
    .action((file: string, refs: string[], _opts: object, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/export.js')).exportImages(ctx, file, refs)),
    );
}

function runCommand(program: Command): void {
  withLocalGlobals(program.command('run').description('create and start a container from an image'))
    .argument('<image>')
    .argument('[command...]', 'command and arguments (default: the image entrypoint and cmd)')
    .passThroughOptions()
    .option('-d, --detach', 'start the container and print its id')
    .option('--rm', 'remove the container when it exits')
    .option('-t, --tty', 'allocate a terminal (implies -i)')
    .option('-i, --interactive', 'attach stdin')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable; KEY alone copies it)', collect, [])
    .option('-v, --mount <src:dst[:ro]>', 'bind mount a host path (repeatable; also type=bind,src=,dst=[,ro])', collect, [])
    .option('--memory <size>', 'memory limit, e.g. 64m or 1g')
    .option('--cpus <n>', 'CPU quota in CPUs, e.g. 0.5')
    .option('-u, --user <user[:group]>', 'uid[:gid] or a name from the image /etc/passwd')
    .addOption(new Option('--net <mode>', 'network').choices(['none', 'host']).default('none'))
    .option('--name <id>', 'container id (default: generated)')
    .action((image: string, command: string[], opts: import('./commands/run.js').RunOptions, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/run.js')).runContainer(ctx, image, command, opts)),
    );
}

function execCommand(program: Command): void {
  withLocalGlobals(program.command('exec').description('run a command in a running container'))
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-t, --tty', 'allocate a terminal (implies -i)')
    .option('-i, --interactive', 'attach stdin')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-u, --user <uid[:gid]>', 'numeric user and group')
    .option('-w, --cwd <dir>', 'working directory')
    .action((id: string, command: string[], opts: import('./commands/exec.js').ExecOptions, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/exec.js')).execInContainer(ctx, id, command, opts)),
    );
}

function containerCommands(program: Command): void {
  withLocalGlobals(program.command('ps').description('list containers and their tasks'))
    .option('-q, --quiet', 'print only ids')
    .action((opts: { quiet?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/ps.js')).listContainers(ctx, opts)),
    );
  withLocalGlobals(program.command('kill <container...>').description('send a signal to containers'))
    .option('-s, --signal <signal>', 'signal name or number', 'SIGTERM')
    .option('-a, --all', 'signal every process of the container')
    .action((ids: string[], opts: { signal: string; all?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/kill.js')).killContainers(ctx, ids, opts)),
    );
  withLocalGlobals(program.command('stop <container...>').description("stop containers: stop signal, then SIGKILL after --time"))
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL', '10')
    .action((ids: string[], opts: { time: string }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/stop.js')).stopContainers(ctx, ids, opts)),
    );
  withLocalGlobals(program.command('rm <container...>').description('remove containers, their tasks and snapshots'))
    .option('-f, --force', 'kill running containers first')
    .action((ids: string[], opts: { force?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/rm.js')).removeContainers(ctx, ids, opts)),
    );
}

function storeCommands(program: Command): void {
  const snapshots = program.command('snapshots').alias('snapshot').description('inspect snapshots');
  withLocalGlobals(snapshots.command('ls', { isDefault: true }).alias('list').description('list snapshots'))
    .option('--snapshotter <name>', 'snapshotter', 'overlayfs')
    .action((opts: { snapshotter: string }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/snapshots.js')).listSnapshots(ctx, opts)),
    );
  const content = program.command('content').description('inspect the content store');
  withLocalGlobals(content.command('ls', { isDefault: true }).alias('list').description('list blobs'))
    .option('-q, --quiet', 'print only digests')
    .action((opts: { quiet?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/content.js')).listContent(ctx, opts)),
    );
  const ns = program.command('ns').alias('namespaces').alias('namespace').description('inspect namespaces');
  withLocalGlobals(ns.command('ls', { isDefault: true }).alias('list').description('list namespaces'))
    .option('-q, --quiet', 'print only names')
    .action((opts: { quiet?: boolean }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/namespaces.js')).listNamespaces(ctx, opts)),
    );
}

function registryCommands(program: Command): void {
  withLocalGlobals(program.command('pull <ref>').description('pull an image (the daemon fetches and unpacks it)'))
    .option('--plain-http', 'use HTTP instead of HTTPS for the registry')
    .option('--platform <os/arch[/variant]>', 'platform to pull (repeatable)', collect, [])
    .option('--all-platforms', 'fetch every platform of an index')
    .action((ref: string, opts: import('./commands/pull.js').PullOptions, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/pull.js')).pullImage(ctx, ref, opts)),
    );
  withLocalGlobals(program.command('push <ref> [local]').description('push an image to a registry (local: the image to push as ref, default ref)'))
    .option('--plain-http', 'use HTTP instead of HTTPS for the registry')
    .option('--platform <os/arch[/variant]>', "push only this platform's manifest of an index, under the tag")
    .option('--all-platforms', 'refuse to push an index unless every manifest it lists is stored locally')
    .action((ref: string, local: string | undefined, opts: import('./commands/push.js').PushOptions, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/push.js')).pushImage(ctx, ref, local, opts)),
    );
}

function daemonCommands(program: Command): void {
  withLocalGlobals(program.command('events').description('print daemon events as they happen'))
    .option('-f, --filter <expr>', 'containerd filter, e.g. topic=="/tasks/exit" (repeatable)', collect, [])
    .action((opts: { filter: string[] }, cmd: Command) =>
      execute(cmd, async (ctx) => (await import('./commands/events.js')).printEvents(ctx, opts)),
    );
  withLocalGlobals(program.command('info').description('describe the daemon: version, plugins, namespaces'))
    .action((_opts: object, cmd: Command) => execute(cmd, async (ctx) => (await import('./commands/info.js')).printInfo(ctx)));
  withLocalGlobals(program.command('version').description('print client and daemon versions'))
    .action((_opts: object, cmd: Command) => execute(cmd, async (ctx) => (await import('./commands/version.js')).printVersion(ctx)));
}

function buildProgram(): Command {
  const program = new Command('berth')
    .description('Berth command line: images, containers and tasks on a berthd daemon')
    .addOption(new Option('-a, --address <path>', 'berthd socket').env('BERTH_ADDRESS').default(DEFAULT_ADDRESS))
    .addOption(new Option('-n, --namespace <name>', 'namespace').env('BERTH_NAMESPACE').default(DEFAULT_NAMESPACE))
    .option('--json', 'print JSON (listings, inspect, info, version)')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      // Usage errors follow the same one-line "berth: ..." shape as every other failure.
      outputError: (text, write) => write(`berth: ${text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}\n`),
    });
  // Subcommands made with .command() inherit exitOverride and the error format set above; help
  // lists them in this order.
  registryCommands(program);
  imagesCommands(program);
  runCommand(program);
  execCommand(program);
  containerCommands(program);
  storeCommands(program);
  daemonCommands(program);
  return program;
}

/** Commander has already printed its usage error; anything else escaped a command's handler. */
function report(err: unknown): void {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
    return;
  }
  process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}

export async function main(argv: readonly string[]): Promise<void> {
  // A closed pipe on stdout (`berth content ls | head -1`) is the reader's choice, not a crash.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    report(err);
  }
  // Lingering handles (a half-read stdin, gRPC channel teardown) must not hold the exit code
  // hostage; stdout and stderr are synchronous for files, pipes and terminals on Linux.
  process.exit();
}

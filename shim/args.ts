/**
 * The shim's command line, in containerd's runtime v2 shape: Go-style flags (`-flag value`,
 * `-flag=value`, `--flag value`, bare `-debug`) followed by one action word.
 */
export interface ShimArgs {
  namespace: string;
  id: string;
  address: string;
  publishBinary: string;
  bundle: string | undefined;
  socket: string | undefined;
  debug: boolean;
  action: string;
}

const BOOLEAN_FLAGS = new Set(['debug', 'v']);
const KNOWN_FLAGS = new Set(['namespace', 'id', 'address', 'publish-binary', 'bundle', 'socket', 'debug', 'v']);

export function parseArgs(argv: readonly string[]): ShimArgs {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (!KNOWN_FLAGS.has(name)) throw new Error(`flag provided but not defined: -${name}`);
    if (eq >= 0) flags.set(name, body.slice(eq + 1));
    else if (BOOLEAN_FLAGS.has(name)) flags.set(name, 'true');
    else {
      const value = argv[++i];
      if (value === undefined) throw new Error(`flag needs an argument: -${name}`);
      flags.set(name, value);
    }
  }
  return {
    namespace: flags.get('namespace') ?? '',
    id: flags.get('id') ?? '',
    address: flags.get('address') ?? '',
    publishBinary: flags.get('publish-binary') ?? '',
    bundle: flags.get('bundle'),
    socket: flags.get('socket'),
    debug: flags.get('debug') === 'true',
    action: positional[0] ?? '',
  };
}

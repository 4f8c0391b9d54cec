import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { isLogLevel, type LogLevel } from '../log.js';

/** berthd's settings: embedded defaults, overridden by the --config file, overridden by flags. */
export interface DaemonConfig {
  root: string;
  state: string;
  address: string;
  logLevel: LogLevel;
  /** How long SIGTERM waits for in-flight calls before closing them. */
  shutdownGraceMs: number;
  /** The runtime v2 shim binary; berth-shim unless set (containerd-shim-runc-v2 also works). */
  shimBinary?: string;
}

export const DEFAULTS: DaemonConfig = {
  root: '/var/lib/berth',
  state: '/run/berth',
  address: '/run/berth/berth.sock',
  logLevel: 'info',
  shutdownGraceMs: 10_000,
};

export const USAGE = `usage: berthd [flags]

  --root DIR        persistent state: metadata.db, content, snapshots (default ${DEFAULTS.root})
  --state DIR       runtime state: sockets, task bundles (default ${DEFAULTS.state})
  --address PATH    gRPC unix socket (default ${DEFAULTS.address})
  --config FILE     TOML config file (see docs/config.md); flags override it
  --log-level LVL   trace, debug, info, warn or error (default ${DEFAULTS.logLevel})
  --version         print the version and exit
  --help            print this help and exit
`;

interface FileConfig {
  root?: unknown;
  state?: unknown;
  grpc?: { address?: unknown };
  debug?: { level?: unknown };
  runtime?: { shim?: unknown };
  shutdown_timeout?: unknown;
}

export class ConfigError extends Error {}

function str(value: unknown, key: string, file: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${file}: "${key}" must be a non-empty string`);
  return value;
}

function level(value: string | undefined, where: string): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (!isLogLevel(value)) throw new ConfigError(`${where}: log level "${value}" is not one of trace, debug, info, warn, error`);
  return value;
}

export function loadConfigFile(file: string): Partial<DaemonConfig> {
  let parsed: FileConfig;
  try {
    parsed = parseToml(readFileSync(file, 'utf8')) as FileConfig;
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  const out: Partial<DaemonConfig> = {};
  const root = str(parsed.root, 'root', file);
  const state = str(parsed.state, 'state', file);
  const address = str(parsed.grpc?.address, 'grpc.address', file);
  const logLevel = level(str(parsed.debug?.level, 'debug.level', file), file);
  const shim = str(parsed.runtime?.shim, 'runtime.shim', file);
  if (shim) out.shimBinary = shim;
  if (root) out.root = root;
  if (state) out.state = state;
  if (address) out.address = address;
  if (logLevel) out.logLevel = logLevel;
  if (parsed.shutdown_timeout !== undefined) {
    if (typeof parsed.shutdown_timeout !== 'number' || parsed.shutdown_timeout < 0) {
      throw new ConfigError(`${file}: "shutdown_timeout" must be a number of seconds`);
    }
    out.shutdownGraceMs = parsed.shutdown_timeout * 1000;
  }
  return out;
}

export type ParsedArgs = { kind: 'run'; config: DaemonConfig } | { kind: 'help' } | { kind: 'version' };

export function parseDaemonArgs(argv: string[]): ParsedArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        root: { type: 'string' },
        state: { type: 'string' },
        address: { type: 'string', short: 'a' },
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string', short: 'l' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const fromFile = values.config ? loadConfigFile(values.config) : {};
  const config: DaemonConfig = { ...DEFAULTS, ...fromFile };
  if (values.root) config.root = values.root;
  if (values.state) config.state = values.state;
  if (values.address) config.address = values.address;
  const flagLevel = level(values['log-level'], '--log-level');
  if (flagLevel) config.logLevel = flagLevel;
  checkSocketPaths(config);
  return { kind: 'run', config };
}

/** sun_path holds 107 bytes; Node truncates a longer socket path without a word. */
const SUN_PATH_MAX = 107;
/** Shim sockets are `<state>/s/<64 hex digits>`. */
const SHIM_SOCKET_SUFFIX = '/s/'.length + 64;

function checkSocketPaths(config: DaemonConfig): void {
  for (const [what, path] of [['--address', `${config.address}.ttrpc`], ['--state', `${config.state}${'x'.repeat(SHIM_SOCKET_SUFFIX)}`]] as const) {
    if (Buffer.byteLength(path) > SUN_PATH_MAX) {
      const room = what === '--state' ? SUN_PATH_MAX - SHIM_SOCKET_SUFFIX : SUN_PATH_MAX - '.ttrpc'.length;
      throw new ConfigError(`${what} path is too long for the unix sockets berthd creates under it: keep it at most ${room} bytes`);
    }
  }
}

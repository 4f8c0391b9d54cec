import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, messageType } from '../services/server/protos.js';

/** containerd.runc.v1.Options, the part of it the shim uses. */
export interface RuntimeOptions {
  /** Runtime binary: a path or a name looked up on PATH. */
  binaryName: string;
  /** --root override; empty = the shim's default for the namespace. */
  root: string;
}

const OPTIONS_TYPE = 'containerd.runc.v1.Options';
/** Written into the bundle so `berth-shim delete` (no RPC, no stdin) knows the runtime. */
const BUNDLE_FILE = 'berth-shim.json';

interface WireAny {
  type_url?: string;
  value?: Buffer;
}

interface WireOptions {
  binary_name?: string;
  root?: string;
}

/** berth-runtime from PATH if installed, else the one next to this checkout's bin/berth-shim. */
function defaultBinary(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    const candidate = join(here, up, 'bin', 'berth-runtime');
    if (existsSync(candidate)) return candidate;
  }
  return 'berth-runtime';
}

export function defaultOptions(): RuntimeOptions {
  return { binaryName: defaultBinary(), root: '' };
}

/** Options from a google.protobuf.Any (Create's `options`, or the bytes `start` reads on stdin). */
export function optionsFromAny(any: WireAny | undefined): RuntimeOptions {
  const defaults = defaultOptions();
  if (!any?.type_url || !any.type_url.endsWith(OPTIONS_TYPE) || !any.value) return defaults;
  const wire = decodeMessage<WireOptions>(messageType(OPTIONS_TYPE), any.value);
  return { binaryName: wire.binary_name || defaults.binaryName, root: wire.root ?? '' };
}

export function optionsFromAnyBytes(bytes: Buffer): RuntimeOptions {
  if (bytes.length === 0) return defaultOptions();
  return optionsFromAny(decodeMessage<WireAny>(messageType('google.protobuf.Any'), bytes));
}

export function saveBundleOptions(bundle: string, options: RuntimeOptions): void {
  const file = join(bundle, BUNDLE_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(options));
  renameSync(`${file}.tmp`, file);
}

export function loadBundleOptions(bundle: string): RuntimeOptions {
  try {
    const saved = JSON.parse(readFileSync(join(bundle, BUNDLE_FILE), 'utf8')) as Partial<RuntimeOptions>;
    const defaults = defaultOptions();
    return { binaryName: saved.binaryName || defaults.binaryName, root: saved.root ?? '' };
  } catch {
    return defaultOptions();
  }
}

import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { CliError } from './errors.js';
import type { OciMount } from './spec.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "64m", "1g", "512k" or plain bytes, binary units as docker reads them. */
export function parseMemory(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(text.trim());
  const unit = SIZE_UNITS[match?.[2]?.toLowerCase() ?? ''];
  if (!match || unit === undefined) throw new CliError(`--memory "${text}": want a size such as 64m or 1g`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < 4 * 1024 * 1024) throw new CliError(`--memory "${text}": at least 4m, or the container cannot start`);
  return bytes;
}

export function parseCpus(text: string): number {
  const cpus = Number(text);
  if (!Number.isFinite(cpus) || cpus <= 0) throw new CliError(`--cpus "${text}": want a positive number such as 0.5 or 2`);
  return cpus;
}

/** `-e KEY=VALUE`, or `-e KEY` to copy the variable from our own environment (docker's rule). */
export function parseEnv(entries: readonly string[]): string[] {
  return entries.flatMap((entry) => {
    if (entry.startsWith('=') || !entry) throw new CliError(`--env "${entry}": want KEY=VALUE or KEY`);
    if (entry.includes('=')) return [entry];
    const value = process.env[entry];
    return value === undefined ? [] : [`${entry}=${value}`];
  });
}

/** `-v SRC:DST[:ro|rw]`: a recursive bind mount of an existing host path. */
export function parseBind(text: string): OciMount {
  const [src = '', dst = '', mode = 'rw', ...rest] = text.split(':');
  if (!src || !dst || rest.length || (mode !== 'ro' && mode !== 'rw')) {
    throw new CliError(`--mount "${text}": want HOST_PATH:CONTAINER_PATH[:ro]`);
  }
  if (!isAbsolute(dst)) throw new CliError(`--mount "${text}": the container path must be absolute`);
  const source = resolve(src);
  if (!existsSync(source)) throw new CliError(`--mount "${text}": ${source} does not exist`);
  return { destination: dst, type: 'bind', source, options: ['rbind', mode] };
}

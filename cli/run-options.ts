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

/** ctr's `--mount type=bind,src=...,dst=...,options=rbind:ro`, with docker's spellings too. */
function parseMountFields(text: string): { src: string; dst: string; readonly: boolean } {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    fields.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? '' : part.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'bind';
  if (type !== 'bind') throw new CliError(`--mount "${text}": only type=bind is supported`);
  const options = (fields.get('options') ?? '').split(':');
  return {
    src: fields.get('src') ?? fields.get('source') ?? '',
    dst: fields.get('dst') ?? fields.get('destination') ?? fields.get('target') ?? '',
    readonly: fields.has('ro') || fields.has('readonly') || options.includes('ro'),
  };
}

/** `SRC:DST[:ro|rw]` (docker's -v) or `type=bind,src=SRC,dst=DST[,ro]`: a recursive bind mount of an existing host path. */
export function parseBind(text: string): OciMount {
  let spec: { src: string; dst: string; readonly: boolean };
  if (text.includes('=')) {
    spec = parseMountFields(text);
  } else {
    const [src = '', dst = '', mode = 'rw', ...rest] = text.split(':');
    if (rest.length || (mode !== 'ro' && mode !== 'rw')) throw new CliError(`--mount "${text}": want HOST_PATH:CONTAINER_PATH[:ro]`);
    spec = { src, dst, readonly: mode === 'ro' };
  }
  if (!spec.src || !spec.dst) throw new CliError(`--mount "${text}": want HOST_PATH:CONTAINER_PATH[:ro] or type=bind,src=...,dst=...`);
  if (!isAbsolute(spec.dst)) throw new CliError(`--mount "${text}": the container path must be absolute`);
  const source = resolve(spec.src);
  if (!existsSync(source)) throw new CliError(`--mount "${text}": ${source} does not exist`);
  return { destination: spec.dst, type: 'bind', source, options: ['rbind', spec.readonly ? 'ro' : 'rw'] };
}

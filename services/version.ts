import { readFileSync } from 'node:fs';

/** berthd's version from package.json (sources run one level below it, compiled code two). */
function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'berth' && pkg.version) return pkg.version;
    } catch {
      continue;
    }
  }
  return '0.0.0';
}

export const VERSION = packageVersion();
/** The git revision, when the build or the environment says which. */
export const REVISION = process.env.BERTH_REVISION ?? '';

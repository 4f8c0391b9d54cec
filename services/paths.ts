import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout or package berthd runs from: sources run from services/, compiled code from
 * dist/services/, so the root is found by walking up to our package.json rather than by a fixed
 * number of '..'.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'berth') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the berth package root above services/');
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();

export const packagePath = (...parts: string[]): string => join(PACKAGE_ROOT, ...parts);

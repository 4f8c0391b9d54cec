import { readFileSync } from 'node:fs';
import { packagePath } from './paths.js';

/** berthd's version, from package.json. */
export const VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
/** The git revision, when the build or the environment says which. */
export const REVISION = process.env.BERTH_REVISION ?? '';

import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../services/log.js';
import { BundleDirs } from '../../../services/tasks/bundle-dirs.js';
import { scratchDir } from '../../helpers/scratch.js';

const KEEP = { config: 'config.json', address: 'shim.address' };

describe('BundleDirs', () => {
  let state: string;
  let dirs: BundleDirs;
  let removed: string[];
  const remove = async (dir: string): Promise<void> => {
    removed.push(dir);
    await rm(dir, { recursive: true, force: true });
  };

  beforeEach(async () => {
    state = await scratchDir('bundle-dirs-');
    dirs = new BundleDirs(state, silentLogger);
    removed = [];
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  /** A bundle as a finished task leaves it: config, empty rootfs, address, files of the shim. */
  async function finishedBundle(id: string): Promise<string> {
    const path = join(state, 'tasks', 'ns', id);
    expect(await dirs.make('ns', path)).toBe(false);
    mkdirSync(join(path, 'rootfs'));
    writeFileSync(join(path, 'config.json'), `{"id":"${id}"}`);
    writeFileSync(join(path, 'shim.address'), 'unix:///run/s/abc');
    writeFileSync(join(path, 'init.pid'), '42');
    writeFileSync(join(path, 'exit-init.json'), '{}');
    return path;
  }

  async function release(path: string): Promise<void> {
    dirs.release(path, KEEP, remove);
    // The id is free at once; what becomes of the files comes later.
    expect(existsSync(path)).toBe(false);
    await dirs.settled();
  }

  it('hands a released bundle to the next task with its inodes, emptied of what the task left', async () => {
    const old = await finishedBundle('a');
    const inodes = ['', 'rootfs', 'config.json', 'shim.address'].map((f) => statSync(join(old, f)).ino);
    await release(old);
    expect(removed).toEqual([]);

    const next = join(state, 'tasks', 'ns', 'b');
    expect(await dirs.make('ns', next)).toBe(true);
    expect(['', 'rootfs', 'config.json', 'shim.address'].map((f) => statSync(join(next, f)).ino)).toEqual(inodes);
    expect(readdirSync(next).sort()).toEqual(['config.json', 'rootfs', 'shim.address']);
    expect(readFileSync(join(next, 'shim.address'), 'utf8')).toBe('');
    expect(statSync(next).mode & 0o777).toBe(0o711);
    // The pool is empty again: the next one is made.
    expect(await dirs.make('ns', join(state, 'tasks', 'ns', 'c'))).toBe(false);
  });

  it('removes a bundle whose rootfs is not empty, that holds a directory, or whose config has another name', async () => {
    const busy = await finishedBundle('busy');
    writeFileSync(join(busy, 'rootfs', 'left'), 'x');
    const nested = await finishedBundle('nested');
    mkdirSync(join(nested, 'extra'));
    const linked = await finishedBundle('linked');
    linkSync(join(linked, 'config.json'), join(state, 'runtime-copy.json'));
    for (const path of [busy, nested, linked]) await release(path);
    expect(removed).toHaveLength(3);
    for (const dir of removed) expect(existsSync(dir)).toBe(false);
    expect(await dirs.make('ns', join(state, 'tasks', 'ns', 'fresh'))).toBe(false);
  });

  it('keeps mkdir semantics: an existing bundle is EEXIST, and the pooled one stays for the next', async () => {
    const taken = await finishedBundle('taken');
    await release(await finishedBundle('a'));
    await expect(dirs.make('ns', taken)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await dirs.make('ns', join(state, 'tasks', 'ns', 'other'))).toBe(true);
  });

  it('makes the parent again when it was removed, and drops a pool left by an earlier daemon', async () => {
    await release(await finishedBundle('a'));
    const restarted = new BundleDirs(state, silentLogger);
    await restarted.clearStale();
    expect(existsSync(join(state, 'bundle-pool'))).toBe(false);
    rmSync(join(state, 'tasks'), { recursive: true });
    expect(await restarted.make('ns', join(state, 'tasks', 'ns', 'b'))).toBe(false);
    expect(statSync(join(state, 'tasks', 'ns')).mode & 0o777).toBe(0o711);
  });
});

import { spawnSync } from 'node:child_process';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useBerthd } from '../helpers/berthd.js';
import { ctr } from '../helpers/ctr.js';
import { runOk } from '../helpers/exec.js';
import { fixtureImage, fixtureManifest } from '../helpers/registry.js';
import { chainId } from '../helpers/snapshots.js';

/** Snapshots driven by hand with ctr: prepare, mount it ourselves, change it, diff it, remove it. */
describe('ctr snapshots against berthd', () => {
  const daemon = useBerthd();

  it('diffs an active snapshot into a layer with the change and a whiteout', async () => {
    const address = daemon().address;
    expect((await ctr(address, ['images', 'pull', '--plain-http', fixtureImage('busybox').ref])).code).toBe(0);
    const base = chainId(fixtureManifest('busybox').layers.map((l) => l.diffId));
    expect((await ctr(address, ['snapshots', 'prepare', 'work', base])).code).toBe(0);
    const dir = join(daemon().dir, 'work-mnt');
    await mkdir(dir);
    const mountCmd = (await ctr(address, ['snapshots', 'mounts', dir, 'work'])).stdout.trim();
    expect(mountCmd).toMatch(/^mount -t overlay overlay .* -o index=off,workdir=.*,upperdir=.*,lowerdir=/);
    await runOk('sh', ['-c', mountCmd]);
    try {
      await writeFile(join(dir, 'newfile'), 'hello\n');
      await unlink(join(dir, 'bin', 'ls'));
    } finally {
      await runOk('umount', [dir]);
      await rm(dir, { recursive: true });
    }
    // ctr writes the layer itself to stdout.
    const layer = spawnSync('/usr/bin/ctr', ['--address', address, 'snapshots', 'diff', 'work'], { maxBuffer: 64 << 20 });
    expect(layer.status, layer.stderr.toString()).toBe(0);
    const listing = spawnSync('tar', ['-tzf', '-'], { input: layer.stdout }).stdout.toString().split('\n');
    expect(listing).toContain('newfile');
    expect(listing).toContain('bin/.wh.ls');
    expect((await ctr(address, ['snapshots', 'rm', 'work'])).code).toBe(0);
    expect((await ctr(address, ['snapshots', 'ls'])).stdout).not.toContain('work');
  });

  it('refuses to remove a snapshot that has a child', async () => {
    const address = daemon().address;
    expect((await ctr(address, ['images', 'pull', '--plain-http', fixtureImage('multi').ref])).code).toBe(0);
    const bottom = chainId(fixtureManifest('multi').layers.slice(0, 1).map((l) => l.diffId));
    const r = await ctr(address, ['snapshots', 'rm', bottom]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/depends on it: failed precondition/);
    expect((await ctr(address, ['snapshots', 'ls'])).stdout).toContain(bottom);
  });
});

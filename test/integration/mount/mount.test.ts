import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detachAll, detachedReleased, type Mount, mountAll, unmountAll, withTempMount } from '../../../services/mount/mount.js';
import { parseMountOptions, readonlyOverlayOptions } from '../../../services/mount/options.js';
import { mountConstants as C } from '../../../services/native/addon.js';
import { scratch } from '../diff/fixtures.js';

const mountedAt = (dir: string): boolean => execFileSync('findmnt', ['-rn', '-o', 'TARGET']).toString().split('\n').includes(dir);

let work: ReturnType<typeof scratch>;
beforeEach(() => {
  work = scratch('mount');
});
afterEach(() => work.cleanup());

function dirs(...names: string[]): string[] {
  return names.map((n) => {
    const d = path.join(work.dir, n);
    fs.mkdirSync(d, { recursive: true });
    return d;
  });
}

describe('parseMountOptions', () => {
  it('splits flags, propagation and filesystem data', () => {
    const parsed = parseMountOptions(['rbind', 'ro', 'nosuid', 'rprivate', 'index=off', 'lowerdir=/a:/b']);
    expect(parsed.flags).toBe((C.MS_BIND | C.MS_REC | C.MS_RDONLY | C.MS_NOSUID) >>> 0);
    expect(parsed.propagation).toEqual([C.MS_PRIVATE | C.MS_REC]);
    expect(parsed.data).toEqual(['index=off', 'lowerdir=/a:/b']);
  });

  it('lets later options clear earlier flags', () => {
    expect(parseMountOptions(['ro', 'rw']).flags).toBe(0);
  });
});

describe('readonlyOverlayOptions', () => {
  it('turns the upperdir into the topmost lowerdir and drops workdir', () => {
    expect(readonlyOverlayOptions(['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l1:/l2'])).toEqual(['index=off', 'lowerdir=/u:/l1:/l2', 'ro']);
  });
});

describe('mountAll / unmountAll', () => {
  it('bind-mounts read-only when asked', async () => {
    const [src, dst] = dirs('src', 'dst');
    fs.writeFileSync(path.join(src!, 'f'), 'x');
    try {
      await mountAll([{ type: 'bind', source: src!, options: ['rbind', 'ro'] }], dst!);
      expect(fs.readFileSync(path.join(dst!, 'f'), 'utf8')).toBe('x');
      expect(() => fs.writeFileSync(path.join(dst!, 'g'), 'y')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    } finally {
      await unmountAll(dst!);
    }
    expect(mountedAt(dst!)).toBe(false);
  });

  it("mounts an overlay as containerd's overlayfs snapshotter describes it", async () => {
    const [l1, l2, upper, workdir, dst] = dirs('l1', 'l2', 'upper', 'work', 'dst');
    fs.writeFileSync(path.join(l1!, 'from-l1'), '1');
    fs.writeFileSync(path.join(l2!, 'from-l2'), '2');
    const m: Mount = { type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${workdir}`, `upperdir=${upper}`, `lowerdir=${l2}:${l1}`] };
    try {
      await mountAll([m], dst!);
      fs.writeFileSync(path.join(dst!, 'new'), 'n');
      expect(fs.readdirSync(dst!).sort()).toEqual(['from-l1', 'from-l2', 'new']);
      expect(fs.readFileSync(path.join(upper!, 'new'), 'utf8')).toBe('n');
    } finally {
      await unmountAll(dst!);
    }
    expect(mountedAt(dst!)).toBe(false);
  });

  it('mounts an overlay whose options exceed a page (one lowerdir at a time)', async () => {
    const lowers = Array.from({ length: 60 }, (_, i) => dirs(`layers/${String(i).padStart(3, '0')}-${'x'.repeat(100)}`)[0]!);
    lowers.forEach((dir, i) => fs.writeFileSync(path.join(dir, `f${i}`), String(i)));
    fs.writeFileSync(path.join(lowers[0]!, 'shadowed'), 'top');
    fs.writeFileSync(path.join(lowers[59]!, 'shadowed'), 'bottom');
    const [upper, workdir, dst] = dirs('upper', 'work', 'dst');
    const options = ['index=off', `workdir=${workdir}`, `upperdir=${upper}`, `lowerdir=${lowers.join(':')}`];
    expect(options.join(',').length).toBeGreaterThan(4096);
    try {
      await mountAll([{ type: 'overlay', source: 'overlay', options }], dst!);
      expect(fs.readdirSync(dst!)).toHaveLength(61);
      expect(fs.readFileSync(path.join(dst!, 'shadowed'), 'utf8')).toBe('top');
      fs.writeFileSync(path.join(dst!, 'new'), 'n');
      expect(fs.existsSync(path.join(upper!, 'new'))).toBe(true);
    } finally {
      await unmountAll(dst!);
    }
    const seen = await withTempMount([{ type: 'overlay', source: 'overlay', options }], async (dir) => {
      expect(() => fs.writeFileSync(path.join(dir, 'ro'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
      return fs.readdirSync(dir).length;
    });
    expect(seen).toBe(62);
    expect(mountedAt(dst!)).toBe(false);
  });

  it('unmounts stacked mounts', async () => {
    const [a, b, dst] = dirs('a', 'b', 'dst');
    await mountAll([{ type: 'bind', source: a!, options: ['bind'] }, { type: 'bind', source: b!, options: ['bind'] }], dst!);
    await unmountAll(dst!);
    expect(mountedAt(dst!)).toBe(false);
  });

  it('detaches stacked mounts at once and releases them; the overlay\'s dirs can then go', async () => {
    const [l, upper, workdir, b, dst] = dirs('l', 'upper', 'work', 'b', 'dst');
    const overlay: Mount = { type: 'overlay', source: 'overlay', options: ['index=off', `workdir=${workdir}`, `upperdir=${upper}`, `lowerdir=${l}`] };
    await mountAll([overlay, { type: 'bind', source: b!, options: ['bind'] }], dst!);
    fs.writeFileSync(path.join(b!, 'top'), 't');
    expect(fs.existsSync(path.join(dst!, 'top'))).toBe(true);
    detachAll(dst!);
    expect(mountedAt(dst!)).toBe(false);
    expect(fs.readdirSync(dst!)).toEqual([]); // the plain directory again
    await detachedReleased();
    fs.rmdirSync(dst!);
    fs.rmSync(upper!, { recursive: true });
    fs.rmSync(workdir!, { recursive: true });
    // Mounting the same directories again works once the old overlay is released.
    fs.mkdirSync(upper!);
    fs.mkdirSync(workdir!);
    fs.mkdirSync(dst!);
    await mountAll([overlay], dst!);
    fs.writeFileSync(path.join(dst!, 'again'), 'a');
    expect(fs.readFileSync(path.join(upper!, 'again'), 'utf8')).toBe('a');
    detachAll(dst!);
    await detachedReleased();
    expect(mountedAt(dst!)).toBe(false);
    detachAll(path.join(work.dir, 'missing')); // nothing there: nothing to do
  });

  it('reports errno names', async () => {
    const [dst] = dirs('dst');
    await expect(mountAll([{ type: 'bind', source: path.join(work.dir, 'missing'), options: ['bind'] }], dst!)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('withTempMount', () => {
  it('gives a read-only view of an overlay without touching its upperdir, then cleans up', async () => {
    const [l1, upper, workdir] = dirs('l1', 'upper', 'work');
    fs.writeFileSync(path.join(l1!, 'a'), 'lower');
    fs.writeFileSync(path.join(upper!, 'b'), 'upper');
    let seen = '';
    const listing = await withTempMount([{ type: 'overlay', source: 'overlay', options: [`workdir=${workdir}`, `upperdir=${upper}`, `lowerdir=${l1}`] }], async (dir) => {
      seen = dir;
      expect(() => fs.writeFileSync(path.join(dir, 'c'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
      return fs.readdirSync(dir).sort();
    });
    expect(listing).toEqual(['a', 'b']);
    expect(mountedAt(seen)).toBe(false);
    expect(fs.existsSync(seen)).toBe(false);
  });

  it('unmounts and removes the directory when fn throws', async () => {
    const [src] = dirs('src');
    let seen = '';
    await expect(withTempMount([{ type: 'bind', source: src!, options: ['rbind'] }], async (dir) => {
      seen = dir;
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(mountedAt(seen)).toBe(false);
    expect(fs.existsSync(seen)).toBe(false);
  });
});

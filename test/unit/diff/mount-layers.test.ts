import { describe, expect, it } from 'vitest';
import type { Mount } from '../../../services/mount/mount.js';
import { layerDirs, overlayUpperdirOver } from '../../../services/diff/mount-layers.js';

const overlay = (lowers: string[], upper?: string, extra: string[] = []): Mount => ({
  type: 'overlay',
  source: 'overlay',
  options: ['index=off', ...(upper === undefined ? [] : [`workdir=/s/w`, `upperdir=${upper}`]), `lowerdir=${lowers.join(':')}`, ...extra],
});
const bind = (dir: string): Mount => ({ type: 'bind', source: dir, options: ['rbind', 'ro'] });

describe('layerDirs', () => {
  it('lists the directories a mount stack shows, topmost first', () => {
    expect(layerDirs([])).toEqual([]);
    expect(layerDirs([bind('/s/1/fs')])).toEqual(['/s/1/fs']);
    expect(layerDirs([overlay(['/s/2/fs', '/s/1/fs'])])).toEqual(['/s/2/fs', '/s/1/fs']);
    expect(layerDirs([overlay(['/s/2/fs', '/s/1/fs'], '/s/3/fs')])).toEqual(['/s/3/fs', '/s/2/fs', '/s/1/fs']);
    expect(layerDirs([bind('/a'), bind('/b')])).toBeNull();
    expect(layerDirs([{ type: 'tmpfs', source: 'tmpfs', options: [] }])).toBeNull();
  });
});

describe('overlayUpperdirOver', () => {
  it("is the upperdir when the overlay's lowerdirs are exactly the lower mounts' layers", () => {
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/1/fs'], '/s/2/fs')])).toBe('/s/2/fs');
    expect(overlayUpperdirOver([overlay(['/s/2/fs', '/s/1/fs'])], [overlay(['/s/2/fs', '/s/1/fs'], '/s/3/fs')])).toBe('/s/3/fs');
  });

  it('is null otherwise, or when the upperdir may hold redirects or metacopy stubs', () => {
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/9/fs', '/s/1/fs'], '/s/2/fs')])).toBeNull();
    expect(overlayUpperdirOver([], [bind('/s/1/fs')])).toBeNull();
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/1/fs'])])).toBeNull();
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/1/fs'], '/s/2/fs', ['metacopy=on'])])).toBeNull();
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/1/fs'], '/s/2/fs', ['redirect_dir=on'])])).toBeNull();
    expect(overlayUpperdirOver([bind('/s/1/fs')], [overlay(['/s/1/fs'], '/s/2/fs', ['redirect_dir=off', 'metacopy=off'])])).toBe('/s/2/fs');
  });
});

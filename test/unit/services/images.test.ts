import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Image } from '../../../services/images/service.js';
import { descriptor, expectBerthError, openTestRoot, recordEvents, sha256Of, type TestRoot } from './harness.js';

let t: TestRoot;
const NS = 'default';
const D1 = sha256Of('manifest one');
const D2 = sha256Of('manifest two');

type NewImage = Omit<Image, 'createdAt' | 'updatedAt'>;
const image = (name: string, digest = D1, labels: Record<string, string> = {}): NewImage => ({
  name,
  labels,
  target: descriptor(digest, 349),
});

beforeEach(async () => {
  t = await openTestRoot();
});

afterEach(async () => {
  await t.dispose();
});

describe('ImageService', () => {
  it('creates and gets an image with timestamps', () => {
    const before = Date.now();
    const created = t.services.images.create(NS, image('127.0.0.1:5055/busybox:latest', D1, { a: '1' }));
    expect(created.createdAt).toBeGreaterThanOrEqual(before);
    expect(created.updatedAt).toBe(created.createdAt);
    const got = t.services.images.get(NS, '127.0.0.1:5055/busybox:latest');
    expect(got).toEqual(created);
    expect(got.target).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D1, size: 349, annotations: {} });
  });

  it('refuses a duplicate with ALREADY_EXISTS and an unknown name with NOT_FOUND', async () => {
    t.services.images.create(NS, image('x:1'));
    await expectBerthError(() => t.services.images.create(NS, image('x:1', D2)), 'ALREADY_EXISTS', 'image "x:1": already exists');
    expect(t.services.images.get(NS, 'x:1').target.digest).toBe(D1);
    await expectBerthError(() => t.services.images.get(NS, 'y:1'), 'NOT_FOUND', 'image "y:1": not found');
    await expectBerthError(() => t.services.images.get('other', 'x:1'), 'NOT_FOUND');
  });

  it('refuses an invalid target with INVALID_ARGUMENT', async () => {
    const images = t.services.images;
    await expectBerthError(() => images.create(NS, { ...image('a:1'), target: descriptor('sha256:../../etc') }), 'INVALID_ARGUMENT', /digest/);
    await expectBerthError(() => images.create(NS, { ...image('a:1'), target: descriptor('md5:abc') }), 'INVALID_ARGUMENT', /unsupported algorithm/);
    await expectBerthError(() => images.create(NS, { ...image('a:1'), target: descriptor(D1, 1, '') }), 'INVALID_ARGUMENT', /media type/);
    await expectBerthError(() => images.create(NS, { ...image('a:1'), target: descriptor(D1, -1) }), 'INVALID_ARGUMENT', /size/);
    await expectBerthError(() => images.create(NS, image('bad\nname')), 'INVALID_ARGUMENT', /image name/);
    expect(images.list(NS)).toEqual([]);
  });

  it('lists with filters on name, target digest and labels', () => {
    const images = t.services.images;
    images.create(NS, image('a:1', D1, { env: 'prod' }));
    images.create(NS, image('b:1', D2, { env: 'dev' }));
    images.create(NS, image('c:1', D2));
    const names = (filters: string[]) => images.list(NS, filters).map((i) => i.name);
    expect(names([])).toEqual(['a:1', 'b:1', 'c:1']);
    expect(names(['name==b:1'])).toEqual(['b:1']);
    expect(names([`target.digest==${D2}`])).toEqual(['b:1', 'c:1']);
    expect(names(['labels.env==prod'])).toEqual(['a:1']);
    expect(names(['labels.env'])).toEqual(['a:1', 'b:1']);
    expect(names([`target.digest==${D2},labels.env==dev`])).toEqual(['b:1']);
    expect(names(['name~=^[ab]:', 'name==c:1'])).toEqual(['a:1', 'b:1', 'c:1']);
    expect(names(['target.mediatype==application/vnd.oci.image.manifest.v1+json'])).toHaveLength(3);
  });

  it('update without a mask replaces target, labels and annotations', () => {
    const images = t.services.images;
    const created = images.create(NS, image('a:1', D1, { old: 'x' }));
    const next = { name: 'a:1', labels: { fresh: 'y' }, target: { ...descriptor(D2, 500), annotations: { k: 'v' } } };
    const updated = images.update(NS, next);
    expect(updated).toMatchObject({ labels: { fresh: 'y' }, target: next.target, createdAt: created.createdAt });
    expect(updated.updatedAt).toBeGreaterThanOrEqual(created.updatedAt);
    expect(images.get(NS, 'a:1')).toEqual(updated);
  });

  it('update with a mask changes only the named fields', () => {
    const images = t.services.images;
    images.create(NS, image('a:1', D1, { keep: '1', drop: '2' }));
    const incoming = { name: 'a:1', labels: { add: '3' }, target: { ...descriptor(D2, 7), annotations: { note: 'n' } } };
    const labelsOnly = images.update(NS, incoming, ['labels.add', 'labels.drop']);
    expect(labelsOnly.labels).toEqual({ keep: '1', add: '3' });
    expect(labelsOnly.target.digest).toBe(D1);
    expect(labelsOnly.target.annotations).toEqual({});

    const targetOnly = images.update(NS, incoming, ['target']);
    expect(targetOnly.target).toMatchObject({ digest: D2, size: 7 });
    expect(targetOnly.labels).toEqual({ keep: '1', add: '3' });
    expect(targetOnly.target.annotations).toEqual({});

    const annotations = images.update(NS, incoming, ['annotations']);
    expect(annotations.target.annotations).toEqual({ note: 'n' });
    expect(images.get(NS, 'a:1')).toEqual(annotations);
  });

  it('update refuses an unknown image, an unknown mask path and an invalid target', async () => {
    const images = t.services.images;
    await expectBerthError(() => images.update(NS, image('ghost:1')), 'NOT_FOUND');
    images.create(NS, image('a:1'));
    await expectBerthError(() => images.update(NS, image('a:1'), ['name']), 'INVALID_ARGUMENT', /cannot update "name"/);
    await expectBerthError(() => images.update(NS, { ...image('a:1'), target: descriptor('sha256:XYZ') }), 'INVALID_ARGUMENT', /digest/);
    expect(images.get(NS, 'a:1').target.digest).toBe(D1);
  });

  it('deletes an image', async () => {
    const images = t.services.images;
    images.create(NS, image('a:1'));
    await images.delete(NS, 'a:1');
    await expectBerthError(() => images.get(NS, 'a:1'), 'NOT_FOUND');
    await expectBerthError(() => images.delete(NS, 'a:1'), 'NOT_FOUND', 'image "a:1": not found');
  });

  it('publishes create, update and delete events', async () => {
    const rec = recordEvents(t.services, ['topic~="^/images/"']);
    t.services.images.create(NS, image('a:1'));
    t.services.images.update(NS, image('a:1', D2));
    await t.services.images.delete(NS, 'a:1');
    await rec.stop();
    expect(rec.topics()).toEqual([`${NS} /images/create`, `${NS} /images/update`, `${NS} /images/delete`]);
    expect(rec.events.map((e) => e.event.type_url)).toEqual([
      'containerd.services.images.v1.ImageCreate',
      'containerd.services.images.v1.ImageUpdate',
      'containerd.services.images.v1.ImageDelete',
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { applyLabelMask, checkMaskPaths } from '../../../services/labels.js';
import { expectBerthError } from './harness.js';

const current = { keep: '1', change: 'old', drop: 'x' };

describe('applyLabelMask', () => {
  it('without a mask, replaces all labels and drops empty values', () => {
    expect(applyLabelMask(current, { change: 'new', gone: '' }, undefined)).toEqual({ change: 'new' });
    expect(applyLabelMask(current, { change: 'new' }, [])).toEqual({ change: 'new' });
  });

  it('the path "labels" replaces all labels', () => {
    expect(applyLabelMask(current, { only: 'this' }, ['labels'])).toEqual({ only: 'this' });
  });

  it('labels.<key> sets one key and leaves the others', () => {
    expect(applyLabelMask(current, { change: 'new', ignored: 'y' }, ['labels.change'])).toEqual({
      keep: '1',
      change: 'new',
      drop: 'x',
    });
  });

  it('labels.<key> with an empty or absent value deletes that key', () => {
    expect(applyLabelMask(current, { drop: '' }, ['labels.drop'])).toEqual({ keep: '1', change: 'old' });
    expect(applyLabelMask(current, {}, ['labels.change'])).toEqual({ keep: '1', drop: 'x' });
  });

  it('keeps dots in a label key', () => {
    const next = applyLabelMask({}, { 'containerd.io/gc.ref.content.l.0': 'sha256:x' }, ['labels.containerd.io/gc.ref.content.l.0']);
    expect(next).toEqual({ 'containerd.io/gc.ref.content.l.0': 'sha256:x' });
  });

  it('does not modify the current labels object', () => {
    const before = { ...current };
    applyLabelMask(current, { keep: '' }, ['labels.keep']);
    expect(current).toEqual(before);
  });

  it('validates incoming labels', async () => {
    await expectBerthError(() => applyLabelMask({}, { '': 'v' }, ['labels']), 'INVALID_ARGUMENT', /label key/);
  });
});

describe('checkMaskPaths', () => {
  it('allows labels paths and the listed fields', () => {
    expect(() => checkMaskPaths(['labels', 'labels.a', 'target'], ['target'])).not.toThrow();
    expect(() => checkMaskPaths(undefined, [])).not.toThrow();
  });

  it('refuses other paths, naming the updatable fields', async () => {
    await expectBerthError(() => checkMaskPaths(['size'], ['target', 'annotations']), 'INVALID_ARGUMENT', /cannot update "size": updatable fields are labels, target, annotations/);
    await expectBerthError(() => checkMaskPaths(['digest'], []), 'INVALID_ARGUMENT', /updatable fields are labels$/);
  });
});

import { describe, expect, it } from 'vitest';
import { LoopBudget } from '../../../services/diff/loop-budget.js';

describe('LoopBudget', () => {
  it('runs the next step at once while the slice lasts', async () => {
    const budget = new LoopBudget(60_000);
    let ran = false;
    budget.then(() => (ran = true));
    expect(ran).toBe(true);
    let paused = false;
    const pausing = budget.pause().then(() => (paused = true));
    await Promise.resolve();
    expect(paused).toBe(true);
    await pausing;
  });

  it('lets the event loop take a turn once the slice is used up', async () => {
    const budget = new LoopBudget(0);
    const order: string[] = [];
    setImmediate(() => order.push('loop'));
    await new Promise<void>((resolve) => budget.then(() => resolve(void order.push('next'))));
    expect(order).toEqual(['loop', 'next']);
    setImmediate(() => order.push('loop again'));
    await budget.pause();
    order.push('resumed');
    expect(order).toEqual(['loop', 'next', 'loop again', 'resumed']);
  });
});

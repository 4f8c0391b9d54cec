import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseArgs } from '../../../shim/args.js';
import { groupHash, groupKey } from '../../../shim/group.js';
import { Lifecycle } from '../../../shim/lifecycle.js';
import { Code } from '../../../services/ttrpc/index.js';

describe('shim command line', () => {
  it('accepts containerd\'s Go-style flags in any spelling', () => {
    const args = parseArgs(['-namespace', 'k8s.io', '--address=/run/x.sock', '-publish-binary', '/bin/c', '-id', 't1', '-debug', 'start']);
    expect(args).toMatchObject({ namespace: 'k8s.io', address: '/run/x.sock', publishBinary: '/bin/c', id: 't1', debug: true, action: 'start' });
    expect(parseArgs(['-namespace', 'n', '-id', 'x', '-bundle', '/b', 'delete'])).toMatchObject({ bundle: '/b', action: 'delete', debug: false });
  });

  it('refuses unknown flags and a flag without its value', () => {
    expect(() => parseArgs(['-bogus', 'x', 'start'])).toThrow(/not defined: -bogus/);
    expect(() => parseArgs(['start', '-id'])).toThrow(/needs an argument/);
  });
});

describe('shim groups', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  function bundle(annotations?: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'berth-group-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
    return dir;
  }

  it('groups by pod, else by namespace, unless the task asks for its own shim', () => {
    expect(groupKey(bundle(), 'ns', 't1')).toBe('namespace');
    expect(groupKey(bundle({ 'io.kubernetes.cri.sandbox-id': 'p1' }), 'ns', 't1')).toBe('pod:p1');
    const dedicated = { 'io.kubernetes.cri.sandbox-id': 'p1', 'io.berth.shim.dedicated': 'true' };
    expect(groupKey(bundle(dedicated), 'ns', 't1')).toBe('task:t1');
    // An unreadable bundle still gets a shim; Create reports the real problem.
    expect(groupKey('/nonexistent', 'ns', 't1')).toBe('namespace');
  });

  it('names sockets per daemon, namespace and group', () => {
    const base = groupHash('/run/berth/berth.sock', 'ns', 'namespace');
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(groupHash('/other.sock', 'ns', 'namespace')).not.toBe(base);
    expect(groupHash('/run/berth/berth.sock', 'ns2', 'namespace')).not.toBe(base);
    expect(groupHash('/run/berth/berth.sock', 'ns', 'pod:namespace')).not.toBe(base);
  });
});

describe('shim lifecycle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(tasks: { count: number }) {
    vi.useFakeTimers();
    const exit = vi.fn();
    return { exit, lifecycle: new Lifecycle(() => tasks.count, exit, 2_000) };
  }

  it('exits after the grace period once the last task is gone, and then refuses reservations', () => {
    const tasks = { count: 1 };
    const { exit, lifecycle } = setup(tasks);
    tasks.count = 0;
    lifecycle.taskRemoved();
    vi.advanceTimersByTime(1_999);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(exit).toHaveBeenCalledOnce();
    expect(() => lifecycle.reserve('next')).toThrow(expect.objectContaining({ grpcCode: Code.UNAVAILABLE }));
    expect(() => lifecycle.taskCreated('next')).toThrow(expect.objectContaining({ grpcCode: Code.UNAVAILABLE }));
  });

  it('a reservation during the grace period keeps the shim until it expires unused', () => {
    const tasks = { count: 0 };
    const { exit, lifecycle } = setup(tasks);
    lifecycle.taskRemoved();
    vi.advanceTimersByTime(1_000);
    lifecycle.reserve('t2');
    vi.advanceTimersByTime(29_000);
    expect(exit).not.toHaveBeenCalled();
    // Unused reservations expire (30 s), then the usual grace applies.
    vi.advanceTimersByTime(1_000 + 2_000);
    expect(exit).toHaveBeenCalledOnce();
  });

  it('Shutdown exits at once only when idle', () => {
    const tasks = { count: 1 };
    const { exit, lifecycle } = setup(tasks);
    lifecycle.shutdown();
    expect(exit).not.toHaveBeenCalled();
    tasks.count = 0;
    lifecycle.shutdown();
    expect(exit).toHaveBeenCalledOnce();
  });
});

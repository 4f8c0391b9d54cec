import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupHash, groupKey } from '../../../services/runtime/shim-group.js';
import { SHIM_BIN } from './harness.js';

/** Runs berth-shim with arguments that fail before it touches a task: nothing to clean up. */
function shim(args: string[]): { code: number | null; stderr: string } {
  const res = spawnSync(SHIM_BIN, args, { encoding: 'utf8', input: '', env: { ...process.env, BERTH_STATE_DIR: '/nonexistent/berth-contract' } });
  return { code: res.status, stderr: res.stderr };
}

describe('shim command line', () => {
  it('refuses unknown flags, a flag without its value and an unknown action, with Go flag wording', () => {
    expect(shim(['-bogus', 'x', 'start'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/flag provided but not defined: -bogus/) });
    expect(shim(['-namespace', 'n', 'start', '-id'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/flag needs an argument: -id/) });
    expect(shim(['-namespace', 'n', '-id', 'x', 'spare'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/unknown action "spare"/) });
  });

  it('accepts containerd\'s Go-style spellings and still checks what each action needs', () => {
    // `--address=`, `-debug` and `-publish-binary` parse; start then wants -namespace and -id.
    expect(shim(['--address=/run/x.sock', '-publish-binary', '/bin/c', '-debug', 'start'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/start needs -namespace and -id/),
    });
    expect(shim(['-namespace', 'n', 'delete'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/delete needs -namespace and -id/) });
  });
});

describe('shim groups (berthd\'s side of the rule)', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  function bundle(annotations?: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'berth-group-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
    return dir;
  }

  it('groups by pod, else by namespace, unless the task asks for its own shim', () => {
    expect(groupKey(bundle(), 't1')).toBe('namespace');
    expect(groupKey(bundle({ 'io.kubernetes.cri.sandbox-id': 'p1' }), 't1')).toBe('pod:p1');
    const dedicated = { 'io.kubernetes.cri.sandbox-id': 'p1', 'io.berth.shim.dedicated': 'true' };
    expect(groupKey(bundle(dedicated), 't1')).toBe('task:t1');
    // An unreadable bundle still gets a shim; Create reports the real problem.
    expect(groupKey('/nonexistent', 't1')).toBe('namespace');
  });

  it('names sockets per daemon, namespace and group', () => {
    const base = groupHash('/run/berth/berth.sock', 'ns', 'namespace');
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(groupHash('/other.sock', 'ns', 'namespace')).not.toBe(base);
    expect(groupHash('/run/berth/berth.sock', 'ns2', 'namespace')).not.toBe(base);
    expect(groupHash('/run/berth/berth.sock', 'ns', 'pod:namespace')).not.toBe(base);
  });
});

import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ctr, uniqueName } from './ctr.js';

export interface EventWatch {
  /** Everything `ctr events` printed so far. */
  output(): string;
  /** Resolves once the output contains text, or rejects after timeoutMs. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs `ctr events` against address and returns once the subscription is live: Subscribe is
 * asynchronous, so namespaces are created until their event shows up.
 */
export async function watchEvents(address: string): Promise<EventWatch> {
  const proc = spawn('/usr/bin/ctr', ['--address', address, 'events'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const waitFor = async (text: string, timeoutMs = 10_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!out.includes(text)) {
      if (Date.now() > deadline) throw new Error(`ctr events did not show "${text}" within ${timeoutMs} ms:\n${out}`);
      await sleep(50);
    }
  };
  const stop = async (): Promise<void> => {
    proc.kill('SIGTERM');
    await exited;
  };
  try {
    const deadline = Date.now() + 10_000;
    while (!out.includes('/namespaces/create')) {
      if (Date.now() > deadline) throw new Error('ctr events never showed a probe event');
      await ctr(address, ['namespaces', 'create', uniqueName('probe')]);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => out, waitFor, stop };
}

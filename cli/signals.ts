import { constants } from 'node:os';
import { CliError } from './errors.js';

/** "SIGTERM", "TERM", "term" or "15" to a signal number. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n < 65) return n;
  }
  const upper = text.toUpperCase();
  const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw new CliError(`unknown signal "${text}"`);
  return n;
}

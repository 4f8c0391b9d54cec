import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { humanSize } from './output.js';
import type { LayerProgress } from './types.js';

/** How pull shows per-layer progress. */
export interface ProgressView {
  update(layer: LayerProgress): void;
  stop(): void;
}

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * A bar per layer on a terminal (cli-progress redraws them in place), one line per status
 * change anywhere else, so logs and CI output stay readable and never hold escape codes.
 */
export function createProgressView(stream: NodeJS.WriteStream): ProgressView {
  return stream.isTTY ? new BarsView(stream) : new LinesView(stream);
}

class BarsView implements ProgressView {
  readonly #bars = new Map<string, SingleBar>();
  readonly #multi: MultiBar;

  constructor(stream: NodeJS.WriteStream) {
    this.#multi = new MultiBar(
      {
        stream,
        format: '{layer} {bar} {status} {size}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      },
      Presets.shades_classic,
    );
  }

  update(layer: LayerProgress): void {
    const total = layer.total ?? 0;
    const offset = layer.status === 'exists' || layer.status === 'unpacked' ? total : (layer.offset ?? 0);
    const payload = {
      layer: short(layer.digest),
      status: (layer.status ?? '').padEnd(11),
      size: total ? `${humanSize(offset)} / ${humanSize(total)}` : humanSize(offset),
    };
    const bar = this.#bars.get(layer.digest);
    if (!bar) {
      this.#bars.set(layer.digest, this.#multi.create(Math.max(total, 1), offset, payload));
      return;
    }
    if (total) bar.setTotal(total);
    bar.update(offset, payload);
  }

  stop(): void {
    this.#multi.stop();
  }
}

class LinesView implements ProgressView {
  readonly #last = new Map<string, string>();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(layer: LayerProgress): void {
    const status = layer.status ?? '';
    if (this.#last.get(layer.digest) === status) return;
    this.#last.set(layer.digest, status);
    const size = layer.total ? ` (${humanSize(layer.total)})` : '';
    this.stream.write(`${short(layer.digest)} ${status}${size}\n`);
  }

  stop(): void {
    // Every line is already out.
  }
}

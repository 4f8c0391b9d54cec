/**
 * The HPACK Huffman code (RFC 7541 Appendix B) and a table-driven decoder.
 *
 * The code is canonical: ordering the symbols by (code length, symbol) and counting up gives the
 * codes of Appendix B. So only the lengths are written out here, and the codes are derived at load
 * (test/unit/server/hpack.test.ts checks a handful against the RFC's printed values).
 *
 * Decoding walks the code tree four bits at a time through a precomputed state table (the
 * technique of nghttp2's decoder): each internal node of the tree is a state; for every state and
 * nibble the table holds the state reached, the symbol completed on the way (at most one, as the
 * shortest code has five bits) and whether EOS was hit. Two table lookups per input byte, no
 * per-bit branching.
 */

/** Code lengths in bits of symbols 0..255, then EOS (256). */
// prettier-ignore
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

export const EOS = 256;

/** The code of each symbol, right-aligned (the last bit is bit 0). */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = CODE_LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Array<number>(CODE_LENGTHS.length).fill(0);
  let code = 0;
  let prevLen = 0;
  order.forEach(({ len, sym }, i) => {
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    codes[sym] = code;
    prevLen = len;
  });
  return codes;
})();

export const HUFFMAN_LENGTHS: readonly number[] = CODE_LENGTHS;

// Decoder table entry layout (one Int32 per state and nibble).
const NEXT_MASK = 0x1ff; // next state
const SYM_SHIFT = 9; // symbol + 1 in bits 9..17, 0 = none
const SYM_MASK = 0x1ff;
const FAIL = 1 << 18; // EOS decoded: an error (RFC 7541 §5.2)

interface Node {
  child: [Node | undefined, Node | undefined];
  sym: number; // -1 for internal nodes
  depth: number;
  allOnes: boolean;
  state: number; // index among internal nodes
}

function buildTables(): { transitions: Int32Array; accepting: Uint8Array } {
  const newNode = (depth: number, allOnes: boolean): Node => ({ child: [undefined, undefined], sym: -1, depth, allOnes, state: -1 });
  const root = newNode(0, true);
  CODE_LENGTHS.forEach((len, sym) => {
    const code = HUFFMAN_CODES[sym] ?? 0;
    let node = root;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      let next = node.child[b];
      if (!next) {
        next = newNode(node.depth + 1, node.allOnes && b === 1);
        node.child[b] = next;
      }
      node = next;
    }
    node.sym = sym;
  });
  const internal: Node[] = [];
  const number = (node: Node | undefined): void => {
    if (!node || node.sym >= 0) return;
    node.state = internal.length;
    internal.push(node);
    number(node.child[0]);
    number(node.child[1]);
  };
  number(root);

  const transitions = new Int32Array(internal.length * 16);
  const accepting = new Uint8Array(internal.length);
  for (const node of internal) {
    // The string may end here if the bits since the last symbol are a prefix of EOS (all ones)
    // no longer than seven bits (RFC 7541 §5.2).
    accepting[node.state] = node.allOnes && node.depth <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let cur = node;
      let emitted = 0;
      let fail = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = cur.child[(nibble >> bit) & 1];
        if (!next) throw new Error('HPACK Huffman code is not complete');
        if (next.sym >= 0) {
          if (next.sym === EOS) fail = FAIL;
          emitted = next.sym + 1;
          cur = root;
        } else {
          cur = next;
        }
      }
      transitions[node.state * 16 + nibble] = cur.state | (emitted << SYM_SHIFT) | fail;
    }
  }
  return { transitions, accepting };
}

const { transitions: TRANSITIONS, accepting: ACCEPTING } = buildTables();

export class HuffmanError extends Error {}

let scratch = Buffer.allocUnsafe(256);

/**
 * Decodes a Huffman-coded string literal of `src[start, end)` as latin1 (header octets, one char
 * each, so lengths match HPACK's octet counts). Throws HuffmanError on EOS or bad padding.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // Every symbol takes at least five bits: the output is at most 8/5 of the input.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i] as number;
    let t = TRANSITIONS[state * 16 + (byte >> 4)] as number;
    if (t & FAIL) throw new HuffmanError('Huffman string contains EOS');
    let sym = (t >> SYM_SHIFT) & SYM_MASK;
    if (sym !== 0) out[n++] = sym - 1;
    state = t & NEXT_MASK;
    t = TRANSITIONS[state * 16 + (byte & 15)] as number;
    if (t & FAIL) throw new HuffmanError('Huffman string contains EOS');
    sym = (t >> SYM_SHIFT) & SYM_MASK;
    if (sym !== 0) out[n++] = sym - 1;
    state = t & NEXT_MASK;
  }
  if (ACCEPTING[state] !== 1) throw new HuffmanError('Huffman string has invalid padding');
  return out.toString('latin1', 0, n);
}

/** Huffman-encodes latin1 text (the encoder does not use it on the wire; tests and tools do). */
export function huffmanEncode(text: string): Buffer {
  let bits = 0;
  for (let i = 0; i < text.length; i++) bits += CODE_LENGTHS[text.charCodeAt(i) & 0xff] ?? 0;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let acc = 0; // pending bits, at most 7 + 30 < 53: exact as a double
  let accBits = 0;
  let pos = 0;
  for (let i = 0; i < text.length; i++) {
    const sym = text.charCodeAt(i) & 0xff;
    const len = CODE_LENGTHS[sym] ?? 0;
    acc = acc * 2 ** len + (HUFFMAN_CODES[sym] ?? 0);
    accBits += len;
    while (accBits >= 8) {
      accBits -= 8;
      const byte = Math.floor(acc / 2 ** accBits);
      out[pos++] = byte;
      acc -= byte * 2 ** accBits;
    }
  }
  // Pad with the most significant bits of EOS: all ones.
  if (accBits > 0) out[pos] = (acc * 2 ** (8 - accBits)) | (0xff >> accBits);
  return out;
}

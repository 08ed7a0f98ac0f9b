// Strict standard base64 (RFC 4648 §4, with `=` padding), as the Movan servers write it. Needs neither Node APIs nor atob: the same
// code runs in browsers and in Node.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes standard base64 with padding. Rejects anything else: whitespace, the URL-safe alphabet, missing or extra
 * padding, and non-zero bits after the last byte (like the servers' decoder).
 *
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {TypeError} on malformed input
 */
export function base64Decode(text) {
  if (typeof text !== 'string') throw new TypeError('base64: expected a string');
  if (text.length % 4 !== 0) throw new TypeError(`base64: length ${text.length} is not a multiple of 4`);
  let pad = 0;
  if (text.endsWith('==')) pad = 2;
  else if (text.endsWith('=')) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const padHere = last ? pad : 0;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      let v = c < 128 ? DECODE[c] : -1;
      if (c === 61 /* = */ && j >= 4 - padHere) v = 0;
      if (v < 0) throw new TypeError(`base64: invalid character at ${i + j}`);
      n = (n << 6) | v;
    }
    if ((padHere === 2 && n & 0xffff) || (padHere === 1 && n & 0xff)) {
      throw new TypeError('base64: non-zero trailing bits');
    }
    out[o++] = (n >>> 16) & 0xff;
    if (padHere < 2) out[o++] = (n >>> 8) & 0xff;
    if (padHere < 1) out[o++] = n & 0xff;
  }
  return out;
}

/**
 * Encodes bytes as standard base64 with padding.
 *
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64Encode(bytes) {
  let s = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + '==';
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + '=';
  }
  return s;
}

// A finished match played back: the replay's header (players, seed) starts the same simulation the live game runs
// (game.js), and its frames, applied in order, give the game again, state for state. After every frame that the
// players' checksums were compared at, the replay's own state hash (the one the live page reports with
// `sync_checksum`) is compared with theirs. No clock, no DOM: replay.js drives it.

import { applyFrame, newGame, stateHash } from './game.js';

/**
 * A checksum comparison of the replay that disagreed with the players' hash.
 * @typedef {object} Mismatch
 * @property {number} frame
 * @property {string|null} expected the players' (majority) hash, `null` when they had none in common
 * @property {string} actual the replay's state hash after that frame
 */

/**
 * A replay as `AccountClient.replay` returns it (docs/replay.md): the header, and frame n's `sync_frame` message as
 * text at index n.
 * @typedef {{header: any, frames: string[]}} Replay
 */

/** One match played back frame by frame. */
export class Playback {
  /**
   * @param {Replay} replay
   * @param {import('./game.js').Rules} rules the rules the game was played with: the header does not carry them
   * @throws {Error} when the header has no players or seed
   */
  constructor(replay, rules) {
    const h = replay?.header;
    if (!h || !Array.isArray(h.players) || h.players.length === 0 || !h.players.every((p) => typeof p === 'string')) {
      throw new Error('the replay header names no players');
    }
    if (!Number.isInteger(h.seed)) throw new Error('the replay header has no seed');
    if (!Array.isArray(replay.frames)) throw new Error('the replay has no frames');
    /** The replay's header, as downloaded. */
    this.header = h;
    /** @private */
    this._frames = replay.frames;
    /** The simulation, as game.js's `newGame` and `applyFrame` leave it. */
    this.sim = newGame(h.players, h.seed, rules);
    /** The index of the next frame to apply; frames `0..next-1` are applied. */
    this.next = 0;
    /** The state hash after the last applied frame (at the start: the state before frame 0). */
    this.stateHash = stateHash(this.sim);
    /**
     * The players' hash by frame, for the comparisons within this replay's frames (a truncated replay lacks the
     * frames of the later ones).
     * @private @type {Map<number, string|null>}
     */
    this._expected = new Map();
    for (const c of Array.isArray(h.checksums) ? h.checksums : []) {
      if (Number.isInteger(c?.frame) && c.frame >= 0 && c.frame < this._frames.length) {
        this._expected.set(c.frame, typeof c.hash === 'string' ? c.hash.toLowerCase() : null);
      }
    }
    /** Checksum comparisons in this replay's frames. */
    this.checksumsTotal = this._expected.size;
    /** Comparisons passed so far, and those whose hash agreed with the players'. */
    this.checksumsChecked = 0;
    this.checksumsMatched = 0;
    /** @type {Mismatch|null} the first comparison that disagreed */
    this.mismatch = null;
  }

  /** Frames in the replay. */
  get frameCount() {
    return this._frames.length;
  }

  /** The last frame applied, -1 before the first. */
  get frame() {
    return this.next - 1;
  }

  /** True once every frame is applied. */
  get done() {
    return this.next >= this._frames.length;
  }

  /**
   * Applies the next frame, then checks the state against the players' checksum for that frame, if there is one.
   * Returns true when this frame ended the game.
   * @returns {boolean}
   * @throws {Error} when the frame is not the `sync_frame` of its number (the playback cannot go on)
   */
  step() {
    if (this.done) return false;
    const n = this.next;
    const frame = parseFrame(this._frames[n], n);
    const ended = applyFrame(this.sim, frame);
    this.next = n + 1;
    this.stateHash = stateHash(this.sim);
    if (this._expected.has(n)) {
      const expected = /** @type {string|null} */ (this._expected.get(n));
      this.checksumsChecked += 1;
      if (expected === this.stateHash) this.checksumsMatched += 1;
      else if (this.mismatch === null) this.mismatch = { frame: n, expected, actual: this.stateHash };
    }
    return ended;
  }

  /**
   * Applies up to `count` frames (fewer at the end).
   * @param {number} count
   */
  run(count) {
    for (let i = 0; i < count && !this.done; i++) this.step();
  }
}

/**
 * Frame `n`'s message as the simulation wants it.
 * @param {string} text
 * @param {number} n
 * @returns {{frame_count: number, actions: any[]}}
 */
function parseFrame(text, n) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new Error(`replay frame ${n} is not JSON`);
  }
  if (msg?.proto !== 'sync_frame' || msg.data?.frame_count !== n) {
    throw new Error(`replay line ${n + 1} is not the sync_frame of frame ${n}`);
  }
  return { frame_count: n, actions: Array.isArray(msg.data.actions) ? msg.data.actions : [] };
}

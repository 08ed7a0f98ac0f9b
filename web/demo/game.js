// The demo's game, as a lockstep simulation: pure functions of `game_start` (its members and seed) and the frames, so
// every tab that applies the same frames in the same order holds the same state. No clock, no Math.random, no DOM.
//
// The rules: coins lie on the board, placed from the game's seed; a player who steps on one scores and a new coin
// appears on a free cell. The first to `coinsToWin` coins wins at once; if nobody has when frame `maxFrames - 1` has
// been applied, the highest score wins, a tie going to the player listed first in `game_start.members`. After the
// end, frames change nothing.

/** Board size in cells. */
export const BOARD_W = 26;
export const BOARD_H = 18;

/**
 * @typedef {object} Rules
 * @property {number} coinsToWin coins that win the game at once (1..99)
 * @property {number} maxFrames the game's length in frames: after frame `maxFrames - 1` the best score wins
 * @property {number} coinsOnBoard coins lying on the board at any time
 */

/** @type {Readonly<Rules>} 5 coins, or the best score after 1200 frames (a minute at 50 ms), 3 coins at a time. */
export const DEFAULT_RULES = Object.freeze({ coinsToWin: 5, maxFrames: 1200, coinsOnBoard: 3 });

/**
 * The rules from a page's query string: `?coins=N` (coins to win) and `?frames=N` (the game's length). Every tab of a
 * game must use the same rules; the state hash covers them, so tabs that do not show a desync.
 * @param {string} search e.g. `location.search`
 * @returns {Rules}
 */
export function rulesFrom(search) {
  const q = new URLSearchParams(search);
  /** @type {(name: string, min: number, max: number, def: number) => number} */
  const int = (name, min, max, def) => {
    const v = Number(q.get(name));
    return q.has(name) && Number.isInteger(v) && v >= min && v <= max ? v : def;
  };
  return {
    coinsToWin: int('coins', 1, 99, DEFAULT_RULES.coinsToWin),
    maxFrames: int('frames', 1, 1_000_000, DEFAULT_RULES.maxFrames),
    coinsOnBoard: DEFAULT_RULES.coinsOnBoard,
  };
}

/**
 * The whole game state: plain data (structuredClone-able), changed only by {@link applyFrame}.
 * @typedef {object} GameState
 * @property {Rules} rules
 * @property {string[]} members the players, in `game_start.members` order
 * @property {Record<string, [number, number]>} positions uid -> [x, y]
 * @property {Record<string, number>} scores uid -> coins collected
 * @property {[number, number][]} coins the coins on the board, in the order they appeared
 * @property {number} rng the PRNG's state (mulberry32), a uint32
 * @property {number} frame the last frame applied (-1 before the first)
 * @property {string|null} winner the winner's uid once the game ended
 * @property {number|null} endFrame the frame that ended it
 */

/**
 * The state at the start of a game: start positions, then the coins, all drawn from `seed`.
 * @param {string[]} members
 * @param {number} seed `game_start.seed`
 * @param {Rules} [rules]
 * @returns {GameState}
 */
export function newGame(members, seed, rules = DEFAULT_RULES) {
  /** @type {GameState} */
  const s = {
    rules: { ...rules },
    members: [...members],
    positions: {},
    scores: {},
    coins: [],
    rng: seed >>> 0,
    frame: -1,
    winner: null,
    endFrame: null,
  };
  const taken = new Set();
  for (const uid of s.members) {
    let x = 0;
    let y = 0;
    for (let tries = 0; tries < 100; tries++) {
      x = 2 + Math.floor(random(s) * (BOARD_W - 4));
      y = 2 + Math.floor(random(s) * (BOARD_H - 4));
      if (!taken.has(`${x},${y}`)) break;
    }
    taken.add(`${x},${y}`);
    s.positions[uid] = [x, y];
    s.scores[uid] = 0;
  }
  for (let i = 0; i < s.rules.coinsOnBoard; i++) placeCoin(s);
  return s;
}

/** @param {unknown} v */
const isStep = (v) => v === -1 || v === 0 || v === 1;

/**
 * Applies one frame's actions in order: a `{"move":[dx,dy]}` moves its player one step (clamped to the board) and
 * picks up a coin it lands on. Unknown players and malformed actions are ignored. Returns true when this frame ended
 * the game.
 * @param {GameState} s
 * @param {{frame_count: number, actions?: any[]}} frame
 * @returns {boolean}
 */
export function applyFrame(s, frame) {
  s.frame = frame.frame_count;
  if (s.winner !== null) return false;
  for (const action of frame.actions ?? []) {
    const uid = action?.uid;
    const p = typeof uid === 'string' && Object.hasOwn(s.positions, uid) ? s.positions[uid] : undefined;
    const move = action?.extra_data?.action_data?.move;
    if (!p || !Array.isArray(move) || move.length !== 2 || !isStep(move[0]) || !isStep(move[1])) continue;
    p[0] = Math.min(BOARD_W - 1, Math.max(0, p[0] + move[0]));
    p[1] = Math.min(BOARD_H - 1, Math.max(0, p[1] + move[1]));
    const coin = s.coins.findIndex((c) => c[0] === p[0] && c[1] === p[1]);
    if (coin < 0) continue;
    s.coins.splice(coin, 1);
    s.scores[uid] += 1;
    if (s.scores[uid] >= s.rules.coinsToWin) return end(s, uid);
    placeCoin(s);
  }
  if (s.frame >= s.rules.maxFrames - 1) return end(s, leader(s));
  return false;
}

/**
 * The state as text, covering everything that decides what comes next: the rules, every player's cell and score,
 * the coins, the PRNG and the outcome. {@link checksumOf} it for `sync_checksum`.
 * @param {GameState} s
 */
export function stateText(s) {
  const players = s.members.map((uid) => `${uid}:${s.positions[uid][0]},${s.positions[uid][1]},${s.scores[uid]}`);
  const coins = s.coins.map((c) => `${c[0]},${c[1]}`).join(';');
  const { coinsToWin, maxFrames, coinsOnBoard } = s.rules;
  const outcome = `${s.winner ?? '-'}@${s.endFrame ?? '-'}`;
  return `r=${coinsToWin},${maxFrames},${coinsOnBoard}|${players.join('|')}|c=${coins}|g=${s.rng}|w=${outcome}`;
}

/**
 * FNV-1a (32-bit) of `text`, as 8 hex digits: what the demo reports in `sync_checksum` (docs/protocol.md §4.8).
 * @param {string} text
 */
export function checksumOf(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** @param {GameState} s */
export const stateHash = (s) => checksumOf(stateText(s));

/**
 * One step from `uid`'s cell toward the nearest coin (Manhattan distance, the older coin on a tie; x before y), or
 * `[0, 0]` when there is none: the autopilot the browser test plays with.
 * @param {GameState} s
 * @param {string} uid
 * @returns {[number, number]}
 */
export function stepTowardCoin(s, uid) {
  const p = s.positions[uid];
  if (!p || s.coins.length === 0) return [0, 0];
  let best = s.coins[0];
  for (const c of s.coins) {
    if (Math.abs(c[0] - p[0]) + Math.abs(c[1] - p[1]) < Math.abs(best[0] - p[0]) + Math.abs(best[1] - p[1])) best = c;
  }
  const dx = Math.sign(best[0] - p[0]);
  return dx !== 0 ? [dx, 0] : [0, Math.sign(best[1] - p[1])];
}

// ---- helpers ----

/**
 * The next number in [0, 1) of the game's PRNG (mulberry32: the same numbers in every JavaScript engine).
 * @param {GameState} s
 */
function random(s) {
  s.rng = (s.rng + 0x6d2b79f5) >>> 0;
  let t = s.rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * Puts a coin on a random free cell (no player, no coin): a few draws, then the first free cell in reading order.
 * @param {GameState} s
 */
function placeCoin(s) {
  const busy = new Set([...Object.values(s.positions), ...s.coins].map((c) => `${c[0]},${c[1]}`));
  for (let tries = 0; tries < 20; tries++) {
    const x = Math.floor(random(s) * BOARD_W);
    const y = Math.floor(random(s) * BOARD_H);
    if (!busy.has(`${x},${y}`)) {
      s.coins.push([x, y]);
      return;
    }
  }
  for (let y = 0; y < BOARD_H; y++) {
    for (let x = 0; x < BOARD_W; x++) {
      if (!busy.has(`${x},${y}`)) {
        s.coins.push([x, y]);
        return;
      }
    }
  }
}

/**
 * The best score; a tie goes to the player listed first.
 * @param {GameState} s
 */
function leader(s) {
  let best = s.members[0];
  for (const uid of s.members) if (s.scores[uid] > s.scores[best]) best = uid;
  return best;
}

/**
 * @param {GameState} s
 * @param {string} winner
 * @returns {true}
 */
function end(s, winner) {
  s.winner = winner;
  s.endFrame = s.frame;
  return true;
}

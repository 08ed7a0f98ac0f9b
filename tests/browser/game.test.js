// Unit tests of the web demo's simulation (web/demo/game.js) in Node: deterministic from the seed and the frames,
// coins and scores, the win at `coinsToWin`, the frame limit with its tie-break, and a state hash that covers it all.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  BOARD_H,
  BOARD_W,
  DEFAULT_RULES,
  applyFrame,
  newGame,
  rulesFrom,
  stateHash,
  stateText,
  stepTowardCoin,
} from '../../web/demo/game.js';

const MEMBERS = ['1001', '1002'];
const SEED = 3543144545;

/**
 * @param {number} n
 * @param {[string, [number, number]][]} moves
 */
const frame = (n, moves = []) => ({
  frame_count: n,
  actions: moves.map(([uid, move]) => ({ uid, extra_data: { timestamp: 0, action_data: { move } } })),
});

/** Plays `uid` toward the nearest coin, a move per frame, until the game ends or `limit` frames; returns them. */
function autoplay(s, uid, limit = 10_000) {
  const frames = [];
  for (let n = s.frame + 1; s.winner === null && n < limit; n++) {
    const f = frame(n, [[uid, stepTowardCoin(s, uid)]]);
    frames.push(f);
    applyFrame(s, f);
  }
  return frames;
}

const cell = (/** @type {[number, number]} */ c) => `${c[0]},${c[1]}`;

describe('web demo game', () => {
  test('the same seed and frames give the same state; another seed another', () => {
    const a = newGame(MEMBERS, SEED);
    const b = newGame(MEMBERS, SEED);
    assert.deepEqual(a, b);
    assert.notEqual(stateHash(newGame(MEMBERS, SEED + 1)), stateHash(a));
    const frames = autoplay(a, '1001');
    for (const f of frames) applyFrame(b, structuredClone(f));
    assert.deepEqual(b, a);
    assert.equal(stateHash(b), stateHash(a));
    assert.match(stateHash(a), /^[0-9a-f]{8}$/);
  });

  test('coins start on free cells inside the board, as many as the rules say', () => {
    for (let seed = 0; seed < 200; seed++) {
      const s = newGame(['1', '2', '3', '4'], seed);
      assert.equal(s.coins.length, DEFAULT_RULES.coinsOnBoard);
      const cells = [...Object.values(s.positions), ...s.coins].map(cell);
      assert.equal(new Set(cells).size, cells.length, `seed ${seed}: no two things on one cell`);
      for (const [x, y] of s.coins) assert.ok(x >= 0 && x < BOARD_W && y >= 0 && y < BOARD_H);
    }
  });

  test('stepping on a coin scores it and puts a new coin on a free cell', () => {
    const s = newGame(MEMBERS, SEED);
    const before = stateHash(s);
    const target = s.coins[0];
    // Teleport next to the coin (a test change), then step onto it.
    s.positions['1001'] = [target[0] === 0 ? 1 : target[0] - 1, target[1]];
    applyFrame(s, frame(0, [['1001', [target[0] === 0 ? -1 : 1, 0]]]));
    assert.deepEqual(s.positions['1001'], target);
    assert.equal(s.scores['1001'], 1);
    assert.equal(s.coins.length, DEFAULT_RULES.coinsOnBoard);
    assert.ok(!s.coins.some((c) => cell(c) === cell(target)), 'the coin is gone from under the player');
    const cells = [...Object.values(s.positions), ...s.coins].map(cell);
    assert.equal(new Set(cells).size, cells.length);
    assert.notEqual(stateHash(s), before);
  });

  test('the first to coinsToWin wins at once; later frames change nothing', () => {
    const s = newGame(MEMBERS, SEED, { ...DEFAULT_RULES, coinsToWin: 3 });
    const frames = autoplay(s, '1002');
    assert.equal(s.winner, '1002');
    assert.equal(s.scores['1002'], 3);
    assert.equal(s.endFrame, frames.length - 1);
    const ended = stateText(s);
    assert.equal(applyFrame(s, frame(s.frame + 1, [['1001', [1, 0]], ['1002', [1, 0]]])), false);
    assert.equal(stateText(s), ended, 'moves after the end do nothing');
  });

  test('the frame limit: the best score wins; a tie goes to the first member', () => {
    const rules = { ...DEFAULT_RULES, maxFrames: 10 };
    const tie = newGame(MEMBERS, SEED, rules);
    for (let n = 0; n < 9; n++) assert.equal(applyFrame(tie, frame(n)), false);
    assert.equal(applyFrame(tie, frame(9)), true);
    assert.equal(tie.winner, '1001', 'nobody scored: the first member');
    assert.equal(tie.endFrame, 9);

    const lead = newGame(['1001', '1002', '1003'], SEED, { ...DEFAULT_RULES, maxFrames: 200 });
    let n = 0;
    for (; lead.scores['1003'] === 0; n++) applyFrame(lead, frame(n, [['1003', stepTowardCoin(lead, '1003')]]));
    for (; n < 199; n++) applyFrame(lead, frame(n));
    assert.equal(lead.winner, null);
    assert.equal(applyFrame(lead, frame(199)), true);
    assert.equal(lead.winner, '1003', 'one coin is the best score');
    assert.equal(lead.endFrame, 199);
  });

  test('malformed actions and unknown players are ignored; moves are clamped to the board', () => {
    const s = newGame(MEMBERS, SEED);
    const before = stateText(s);
    applyFrame(s, {
      frame_count: 0,
      actions: [
        null,
        { uid: '9999', extra_data: { action_data: { move: [1, 0] } } },
        { uid: '__proto__', extra_data: { action_data: { move: [1, 0] } } },
        { uid: '1001', extra_data: { action_data: { move: [2, 0] } } },
        { uid: '1001', extra_data: { action_data: { move: [1] } } },
        { uid: '1001', extra_data: { action_data: { jump: true } } },
        { uid: '1001' },
      ],
    });
    assert.equal(stateText(s), before);
    s.positions['1001'] = [0, 0];
    s.coins.splice(0, s.coins.length, [5, 5]);
    applyFrame(s, frame(1, [['1001', [-1, -1]]]));
    assert.deepEqual(s.positions['1001'], [0, 0]);
  });

  test('the hash covers the rules, scores and coins', () => {
    const base = newGame(MEMBERS, SEED);
    const h = stateHash(base);
    assert.notEqual(stateHash(newGame(MEMBERS, SEED, { ...DEFAULT_RULES, coinsToWin: 4 })), h, 'rules');
    const scored = structuredClone(base);
    scored.scores['1002'] = 1;
    assert.notEqual(stateHash(scored), h, 'scores');
    const moved = structuredClone(base);
    moved.coins[0] = [moved.coins[0][0] === 0 ? 1 : 0, moved.coins[0][1]];
    assert.notEqual(stateHash(moved), h, 'coins');
  });

  test('rules from the query string, out-of-range values ignored', () => {
    assert.deepEqual(rulesFrom(''), { ...DEFAULT_RULES });
    assert.equal(rulesFrom('?coins=1').coinsToWin, 1);
    assert.equal(rulesFrom('?coins=0').coinsToWin, DEFAULT_RULES.coinsToWin);
    assert.equal(rulesFrom('?coins=x').coinsToWin, DEFAULT_RULES.coinsToWin);
    assert.equal(rulesFrom('?frames=600').maxFrames, 600);
  });

  test('the simulation uses no clock and no Math.random', () => {
    const src = readFileSync(new URL('../../web/demo/game.js', import.meta.url), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    assert.ok(src.includes('export function applyFrame'), 'the code is still there');
    for (const word of ['Math.random', 'Date', 'performance', 'crypto', 'window', 'document']) {
      assert.ok(!src.includes(word), `game.js uses ${word}`);
    }
  });
});

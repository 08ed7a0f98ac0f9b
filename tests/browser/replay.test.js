// Unit tests of the demo's playback (web/demo/playback.js) in Node: a replay (header + `sync_frame` lines, as
// `AccountClient.replay` returns it) played back gives the live game's state, and the state hash is compared with
// every recorded checksum: matches counted, the first mismatch kept, comparisons past a truncated replay's frames
// left out, malformed frames refused.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DEFAULT_RULES, applyFrame, newGame, stateHash, stepTowardCoin } from '../../web/demo/game.js';
import { Playback } from '../../web/demo/playback.js';

const MEMBERS = ['1001', '1002'];
const SEED = 3543144545;
const INTERVAL = 20;
const RULES = { ...DEFAULT_RULES, coinsToWin: 3 };

/**
 * A live game as the sync server records it: 1001 heads for the coins until it wins, then 30 empty frames while the
 * players leave; a checksum comparison every `INTERVAL` frames with the live page's hash.
 */
function liveGame() {
  const s = newGame(MEMBERS, SEED, RULES);
  /** @type {string[]} */
  const frames = [];
  /** @type {{frame: number, hash: string}[]} */
  const checksums = [];
  for (let n = 0, after = 0; after < 30; n++) {
    const move = stepTowardCoin(s, '1001');
    const extra = { timestamp: 1700000000 + n / 20, action_data: { move } };
    const actions = s.winner === null ? [{ uid: '1001', extra_data: extra }] : [];
    const frame = { frame_count: n, actions };
    frames.push(JSON.stringify({ proto: 'sync_frame', data: frame }));
    applyFrame(s, frame);
    if (n % INTERVAL === 0) checksums.push({ frame: n, hash: stateHash(s) });
    if (s.winner !== null) after += 1;
  }
  const header = {
    format: 'movan-replay',
    version: 1,
    match_id: 'quick-1-0123456789abcdef',
    room_id: 'quick-1',
    players: MEMBERS,
    seed: SEED,
    frame_interval_ms: 50,
    checksum_interval: INTERVAL,
    game_frame_count: frames.length,
    frame_count: frames.length,
    truncated: false,
    first_desync_frame: null,
    checksums,
  };
  return { live: s, replay: { header, frames } };
}

/** @param {Playback} p */
function playAll(p) {
  while (!p.done) p.step();
  return p;
}

describe('playback', () => {
  test('plays the game again: the same winner, scores, coins and state; every checksum matches', () => {
    const { live, replay } = liveGame();
    const p = new Playback(replay, RULES);
    assert.equal(p.frame, -1);
    assert.equal(p.stateHash, stateHash(newGame(MEMBERS, SEED, RULES)), 'the state before frame 0');
    playAll(p);
    assert.equal(p.frame, replay.frames.length - 1);
    assert.equal(p.sim.winner, '1001');
    assert.equal(p.sim.endFrame, live.endFrame);
    assert.deepEqual(p.sim.scores, live.scores);
    assert.deepEqual(p.sim.coins, live.coins);
    assert.equal(p.stateHash, stateHash(live));
    assert.ok(p.checksumsTotal >= 2, `comparisons: ${p.checksumsTotal}`);
    assert.equal(p.checksumsTotal, replay.header.checksums.length);
    assert.equal(p.checksumsChecked, p.checksumsTotal);
    assert.equal(p.checksumsMatched, p.checksumsTotal);
    assert.equal(p.mismatch, null);
    assert.equal(p.step(), false, 'past the end, nothing happens');
  });

  test('run(n) applies n frames; step() says which frame ended the game', () => {
    const { live, replay } = liveGame();
    const p = new Playback(replay, RULES);
    p.run(5);
    assert.equal(p.frame, 4);
    let ended = -1;
    while (!p.done) if (p.step()) ended = p.frame;
    assert.equal(ended, live.endFrame);
  });

  test('the first checksum that differs is kept; the others still count', () => {
    const { replay } = liveGame();
    const [, second, third] = replay.header.checksums;
    second.hash = '00000000';
    third.hash = null; // no majority: nothing to agree with
    const p = playAll(new Playback(replay, RULES));
    assert.deepEqual(p.mismatch, { frame: second.frame, expected: '00000000', actual: p.mismatch?.actual });
    assert.notEqual(p.mismatch?.actual, '00000000');
    assert.equal(p.checksumsChecked, p.checksumsTotal);
    assert.equal(p.checksumsMatched, p.checksumsTotal - 2);
  });

  test('other rules than the game had differ at the first comparison', () => {
    const { replay } = liveGame();
    const p = playAll(new Playback(replay, { ...RULES, coinsToWin: 5 }));
    assert.equal(p.mismatch?.frame, 0, 'the rules are part of the state hash');
    assert.equal(p.checksumsMatched, 0);
  });

  test('a truncated replay checks only the comparisons within its frames', () => {
    const { replay } = liveGame();
    const kept = 2 * INTERVAL + 5;
    const header = { ...replay.header, truncated: true, frame_count: kept };
    const truncated = { header, frames: replay.frames.slice(0, kept) };
    const p = playAll(new Playback(truncated, RULES));
    assert.equal(p.frame, kept - 1);
    assert.equal(p.checksumsTotal, 3, 'frames 0, 20 and 40');
    assert.equal(p.checksumsMatched, 3);
  });

  test('a frame that is not the sync_frame of its number stops the playback', () => {
    const { replay } = liveGame();
    replay.frames[3] = replay.frames[4];
    const p = new Playback(replay, RULES);
    p.run(3);
    assert.throws(() => p.step(), /line 4 is not the sync_frame of frame 3/);
    replay.frames[3] = '{"proto":"sync_frame"';
    assert.throws(() => new Playback(replay, RULES).run(4), /frame 3 is not JSON/);
  });

  test('a header without players or seed is refused', () => {
    const { replay } = liveGame();
    assert.throws(() => new Playback({ ...replay, header: { ...replay.header, players: [] } }, RULES), /no players/);
    assert.throws(() => new Playback({ ...replay, header: { ...replay.header, seed: 'x' } }, RULES), /no seed/);
  });
});

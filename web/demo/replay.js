// The demo's replay panel: the player's recent matches (`GET /v1/me/matches`), and "Watch replay", which downloads
// the chosen match's replay (`?format=jsonl`) and plays it back on the board at the recorded tick rate (1x, 4x, or
// at once), checking the state against the players' checksums on the way (playback.js). The page (demo.js) draws
// the board from `view()` while a replay is open.

import { Playback } from './playback.js';

/** How long to wait for a just-finished match to show in the match list (the report follows the game's end). */
const MATCH_WAIT_MS = 10_000;
/** How long to retry a replay that is not there yet (404 `replay_not_found`: it follows the match report). */
const REPLAY_WAIT_MS = 8_000;
const RETRY_EVERY_MS = 250;
/** Matches in the list. */
const LIST_LIMIT = 10;
/** Longest stretch of frames applied at once at "instant" speed before the page gets to draw, ms. */
const INSTANT_SLICE_MS = 12;

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * What `movanDemo.replay` holds while a replay is open (`null` when none is).
 * @typedef {object} ReplayState
 * @property {string} matchId
 * @property {string|null} roomId
 * @property {'loading'|'playing'|'done'|'error'} status
 * @property {'1'|'4'|'instant'} speed
 * @property {string[]} players the header's players
 * @property {number} frame the last frame applied, -1 before the first
 * @property {number} frames frames in the replay
 * @property {number|null} gameFrames frames the game had (more than `frames` when truncated)
 * @property {boolean} truncated
 * @property {Record<string, [number, number]>} positions
 * @property {Record<string, number>} scores
 * @property {[number, number][]} coins
 * @property {string|null} winner
 * @property {number|null} endFrame
 * @property {string} stateHash after `frame`
 * @property {number} checksumsTotal comparisons within the replay's frames
 * @property {number} checksumsChecked
 * @property {number} checksumsMatched
 * @property {import('./playback.js').Mismatch|null} mismatch the first that disagreed
 * @property {number|null} firstDesyncFrame from the header: where the players' checksums disagreed
 * @property {boolean} done every frame applied
 * @property {string|null} error why the replay could not be played
 */

/**
 * The replay panel of the page.
 * @param {object} opts
 * @param {ReturnType<typeof import('./state.js').newDemoState>} opts.demo the page state; `replay` and `matches` are
 *   kept up to date here
 * @param {import('./game.js').Rules} opts.rules the page's rules, which replays are played with
 * @param {() => void} opts.onChange redraws the page
 * @param {(e: unknown) => string} opts.describe an error in words
 */
export function replayPanel({ demo, rules, onChange, describe }) {
  const ui = {
    panel: $('replay-panel'),
    match: /** @type {HTMLSelectElement} */ ($('replay-match')),
    watch: /** @type {HTMLButtonElement} */ ($('replay-watch')),
    speed: /** @type {HTMLSelectElement} */ ($('replay-speed')),
    close: /** @type {HTMLButtonElement} */ ($('replay-close')),
    info: $('replay-info'),
    frame: $('replay-frame'),
    score: $('replay-score'),
    check: $('replay-check'),
    note: $('replay-note'),
  };
  /** @type {import('../js/movan.js').AccountClient|null} */
  let account = null;
  let token = () => '';
  /** @type {Playback|null} */
  let playback = null;
  /** Bumped by every load and close: an older download or timer finds itself stale and stops. */
  let generation = 0;
  let listGeneration = 0;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  /** The playback clock: frame `base.next` was due at `base.at` (performance.now()). */
  let base = { at: 0, next: 0 };
  /** @type {{roomId: string, startedAt: number|null}|null} the game this page last played, once it started */
  let lastGame = null;

  /** @returns {ReplayState|null} */
  const state = () => /** @type {any} */ (demo).replay;

  /** Copies the playback's progress into `movanDemo.replay` and redraws. */
  function publish() {
    const r = state();
    if (!r) return;
    if (playback) {
      const { sim } = playback;
      Object.assign(r, {
        frame: playback.frame,
        positions: sim.positions,
        scores: sim.scores,
        coins: sim.coins,
        winner: sim.winner,
        endFrame: sim.endFrame,
        stateHash: playback.stateHash,
        checksumsChecked: playback.checksumsChecked,
        checksumsMatched: playback.checksumsMatched,
        mismatch: playback.mismatch,
        done: playback.done,
      });
      if (playback.done && r.status === 'playing') r.status = 'done';
    }
    onChange();
  }

  /**
   * Downloads the match's replay (retrying while it is not there yet) and starts playing it.
   * @param {string} matchId
   */
  async function watch(matchId) {
    if (!account) return;
    stopTimer();
    playback = null;
    const gen = ++generation;
    const speed = /** @type {'1'|'4'|'instant'} */ (ui.speed.value);
    /** @type {ReplayState} */
    const r = {
      matchId, roomId: null, status: 'loading', speed, players: [], frame: -1, frames: 0, gameFrames: null,
      truncated: false, positions: {}, scores: {}, coins: [], winner: null, endFrame: null, stateHash: '',
      checksumsTotal: 0, checksumsChecked: 0, checksumsMatched: 0, mismatch: null, firstDesyncFrame: null,
      done: false, error: null,
    };
    /** @type {any} */ (demo).replay = r;
    onChange();
    /** @type {import('./playback.js').Replay|undefined} */
    let replay;
    for (const deadline = Date.now() + REPLAY_WAIT_MS; !replay; ) {
      try {
        replay = await account.replay(token(), matchId);
      } catch (e) {
        if (gen !== generation) return;
        const err = /** @type {any} */ (e);
        if (err?.status === 404 && err.code === 'replay_not_found' && Date.now() < deadline) {
          await sleep(RETRY_EVERY_MS);
          if (gen !== generation) return;
          continue;
        }
        fail(r, `No replay of ${matchId}: ${describe(e)}`);
        return;
      }
    }
    if (gen !== generation) return;
    try {
      playback = new Playback(replay, rules);
    } catch (e) {
      fail(r, `Cannot play ${matchId}: ${describe(e)}`);
      return;
    }
    const h = playback.header;
    Object.assign(r, {
      roomId: typeof h.room_id === 'string' ? h.room_id : null,
      status: 'playing',
      players: playback.sim.members,
      frames: playback.frameCount,
      gameFrames: Number.isInteger(h.game_frame_count) ? h.game_frame_count : null,
      truncated: h.truncated === true,
      checksumsTotal: playback.checksumsTotal,
      firstDesyncFrame: Number.isInteger(h.first_desync_frame) ? h.first_desync_frame : null,
    });
    base = { at: performance.now(), next: 0 };
    publish();
    tick(gen);
  }

  /**
   * Applies the frames that are due and schedules the next tick.
   * @param {number} gen
   */
  function tick(gen) {
    if (gen !== generation || !playback) return;
    const r = /** @type {ReplayState} */ (state());
    try {
      if (r.speed === 'instant') {
        const until = performance.now() + INSTANT_SLICE_MS;
        while (!playback.done && performance.now() < until) playback.run(32);
      } else {
        const interval = frameIntervalMs(playback);
        const due = base.next + Math.floor(((performance.now() - base.at) * Number(r.speed)) / interval);
        // Far behind (a background tab's throttled timers): catch up a second's worth, then go on from there.
        const limit = Math.ceil((1000 * Number(r.speed)) / interval);
        playback.run(Math.min(due + 1 - playback.next, limit));
        if (due + 1 - playback.next > 0) base = { at: performance.now(), next: playback.next };
      }
    } catch (e) {
      playback = null;
      fail(r, describe(e));
      return;
    }
    publish();
    if (playback.done) return;
    const wait = r.speed === 'instant' ? 0 : frameIntervalMs(playback) / Number(r.speed);
    timer = setTimeout(() => tick(gen), Math.max(4, wait));
  }

  /**
   * @param {ReplayState} r
   * @param {string} why
   */
  function fail(r, why) {
    r.status = 'error';
    r.error = why;
    onChange();
  }

  function stopTimer() {
    clearTimeout(timer);
    timer = undefined;
  }

  /** Closes the replay: the board shows the live game again. */
  function close() {
    stopTimer();
    generation += 1;
    playback = null;
    /** @type {any} */ (demo).replay = null;
    onChange();
  }

  /**
   * Fills the match list from `GET /v1/me/matches`. With `expect`, keeps asking (for a while) until that game is in
   * it: the match report reaches the account server a moment after the game ended.
   * @param {{roomId: string, startedAt: number|null}|null} expect
   */
  async function refreshMatches(expect = null) {
    if (!account) return;
    const gen = ++listGeneration;
    for (const deadline = Date.now() + MATCH_WAIT_MS; ; ) {
      /** @type {any[]} */
      let list;
      try {
        list = (await account.matches(token(), { limit: LIST_LIMIT }))?.matches ?? [];
      } catch (e) {
        if (gen === listGeneration) ui.note.textContent = `Could not list your matches: ${describe(e)}`;
        return;
      }
      if (gen !== listGeneration) return;
      const found = expect !== null && list.some((m) => isGame(m, expect));
      showMatches(list, found ? list.find((m) => isGame(m, expect))?.match_id : undefined);
      if (expect === null || found || Date.now() >= deadline) return;
      await sleep(RETRY_EVERY_MS);
      if (gen !== listGeneration) return;
    }
  }

  /**
   * @param {any[]} list newest first
   * @param {string} [select] the match to select (default: the one selected before, else the newest)
   */
  function showMatches(list, select) {
    const before = select ?? ui.match.value;
    /** @type {any} */ (demo).matches = list.map((m) => ({
      match_id: m.match_id, room_id: m.room_id, players: m.players, frame_count: m.frame_count,
      end_reason: m.end_reason, started_at: m.started_at,
    }));
    ui.match.replaceChildren(
      ...list.map((m) => {
        const option = document.createElement('option');
        option.value = m.match_id;
        const when = typeof m.started_at === 'number' ? new Date(m.started_at * 1000).toLocaleTimeString() : '';
        const reason = String(m.end_reason).replace(/_/g, ' ');
        option.textContent = `${when} ${m.room_id} · ${m.frame_count} frames · ${reason}`;
        return option;
      }),
    );
    if (list.some((m) => m.match_id === before)) ui.match.value = before;
    onChange();
  }

  /** The text of the board's message while a replay is open. */
  function overlayText() {
    const r = state();
    if (!r) return '';
    if (r.status === 'loading') return `Loading the replay of ${r.matchId}…`;
    if (r.status === 'error') return 'The replay could not be played';
    if (r.status !== 'done') return '';
    const scores = r.players.map((uid) => `${uid}: ${r.scores[uid] ?? 0}`).join(' · ');
    const head = r.winner !== null ? `${r.winner} wins` : `No winner after ${r.frames} frames`;
    return `${head}\n${scores}\nReplay of ${r.roomId ?? r.matchId}`;
  }

  /** The checksum line: how far the replay agrees with what the players reported. */
  function checkText() {
    const r = /** @type {ReplayState} */ (state());
    if (r.mismatch) {
      const m = r.mismatch;
      return `replay differs from the players' checksum at frame ${m.frame} (replay ${m.actual}, players ` +
        `${m.expected ?? 'no majority'}): other rules (?coins, ?frames) than the game's?`;
    }
    if (r.checksumsTotal === 0) return 'no checksums recorded';
    if (r.done) return `replay matches the players' checksums (${r.checksumsMatched}/${r.checksumsTotal})`;
    return `${r.checksumsMatched}/${r.checksumsTotal} checksums match so far`;
  }

  /**
   * Brings the panel in line with the page.
   * @param {boolean} canWatch signed in and in no room
   */
  function render(canWatch) {
    const r = state();
    ui.panel.hidden = demo.uid === null;
    ui.watch.disabled = !canWatch || !account || ui.match.value === '' || r?.status === 'loading';
    ui.match.hidden = ui.match.options.length === 0;
    ui.close.hidden = r === null;
    ui.info.hidden = r === null || r.status === 'loading' || r.status === 'error';
    if (r && (r.status === 'playing' || r.status === 'done')) {
      ui.frame.textContent = `${Math.max(r.frame, 0)} / ${r.frames - 1}${r.truncated ? ' (truncated)' : ''}`;
      const score = (/** @type {string} */ uid) => `${uid === demo.uid ? 'you' : uid} ${r.scores[uid] ?? 0}`;
      ui.score.textContent = r.players.map(score).join(' · ');
      ui.check.textContent = checkText();
      ui.check.className = r.mismatch ? 'bad' : r.done && r.checksumsTotal > 0 ? 'ok' : '';
    }
    ui.note.textContent = noteText(r, ui.match.options.length);
  }

  /**
   * @param {ReplayState|null} r
   * @param {number} matches
   */
  function noteText(r, matches) {
    if (r?.status === 'error') return r.error ?? '';
    if (r?.status === 'loading') return 'Downloading…';
    const notes = [];
    if (r?.truncated) {
      notes.push(`Truncated: the replay holds the first ${r.frames} of the game's ${r.gameFrames ?? '?'} frames.`);
    }
    if (r?.firstDesyncFrame != null) notes.push(`The players desynced at frame ${r.firstDesyncFrame}.`);
    if (r) notes.push(`Played with this page's rules: first to ${rules.coinsToWin}, ${rules.maxFrames} frames.`);
    else if (matches === 0) notes.push('Your finished matches show here.');
    return notes.join(' ');
  }

  ui.watch.addEventListener('click', () => {
    if (ui.match.value) watch(ui.match.value);
  });
  ui.close.addEventListener('click', () => close());
  ui.speed.addEventListener('change', () => {
    const r = state();
    if (!r) return;
    r.speed = /** @type {'1'|'4'|'instant'} */ (ui.speed.value);
    if (playback && !playback.done) {
      // From the frame it is at, at the new speed.
      stopTimer();
      base = { at: performance.now(), next: playback.next };
      tick(generation);
    }
  });
  ui.match.addEventListener('change', () => onChange());

  return {
    /** True while a replay is open: the board shows it instead of the live game. */
    get active() {
      return state() !== null;
    },
    /** The open replay's players (for their colours), in the header's order. */
    get players() {
      return state()?.players ?? [];
    },
    /**
     * Signed in: replays are downloaded with `token()`; lists the player's matches.
     * @param {import('../js/movan.js').AccountClient} client
     * @param {() => string} currentToken
     */
    signIn(client, currentToken) {
      account = client;
      token = currentToken;
      refreshMatches();
    },
    /**
     * A game started on this page: the board goes back to it.
     * @param {{room_id: string, members?: string[], start_time?: number}} start
     */
    gameStarted(start) {
      if (state()) close();
      // A spectator's list never gets the game: only the players' does.
      const player = Array.isArray(start.members) && start.members.includes(demo.uid ?? '');
      const startedAt = typeof start.start_time === 'number' ? start.start_time : null;
      lastGame = player ? { roomId: start.room_id, startedAt } : null;
    },
    /** This page's player finished a game: the list gets it as soon as the account server has it. */
    gameEnded() {
      const game = lastGame;
      lastGame = null;
      if (game) refreshMatches(game);
    },
    close,
    render,
    overlayText,
    /** What the board shows of the open replay. */
    view() {
      const r = state();
      return { players: r?.players ?? [], positions: r?.positions ?? {}, coins: r?.coins ?? [] };
    },
  };
}

/** @param {Playback} p */
function frameIntervalMs(p) {
  const ms = p.header.frame_interval_ms;
  return typeof ms === 'number' && ms > 0 ? ms : 50;
}

/**
 * @param {any} m a match of `GET /v1/me/matches`
 * @param {{roomId: string, startedAt: number|null}} game
 */
function isGame(m, game) {
  if (m?.room_id !== game.roomId) return false;
  return game.startedAt === null || Math.abs(Number(m.started_at) - game.startedAt) < 0.01;
}

// Movan web demo: log in, quick-match, get ready, and race for coins on a shared board; the first to 5 wins.
//
// The game (game.js) is a lockstep simulation: a square moves only when a `sync_frame` carries that player's
// `{"move":[dx,dy]}` action, and every player applies the same frames in the same order, so every tab shows the same
// board, the same scores and the same winner. Keys only decide which action to send next; they never move anything
// locally. When the game ends, every page shows the winner, stops sending, and the players leave the room after a
// short pause, which ends the game on the server (`game_over` reason `all_left`, which spectators see).
//
// For tests, `window.movanDemo` holds the current state (state.js). The modules: game.js the simulation, board.js
// the canvas, keys.js the keyboard, replay.js and playback.js the replays of finished matches, this file the page
// and the session.

import { AccountClient, GameSession } from '../js/movan.js';
import { drawBoard, overlayPlace, pieceBoxes } from './board.js';
import { applyFrame, newGame, rulesFrom, stateHash, stepTowardCoin } from './game.js';
import { direction, forgetKeys, forgetTap, listenToKeys } from './keys.js';
import { replayPanel } from './replay.js';
import { newDemoState } from './state.js';

/** Colours by position in `game_start.members` (or in the room before the game). */
const COLORS = ['#e4572e', '#29a3e0', '#f3a712', '#8cc63f', '#b86bd8', '#2ec4b6', '#ff7aa8', '#c0c0c0'];
/** How often to ping for the round-trip time, ms. */
const PING_EVERY_MS = 2000;
/** Entries kept in `movanDemo.history`. */
const HISTORY_MAX = 400;
/** How long the winner shows before the players leave the room (which ends the game on the server), ms. */
const LEAVE_AFTER_MS = 1500;
/** The rules of this page's games, from `?coins=N&frames=N`: every tab of a game must load the same ones. */
const RULES = rulesFrom(location.search);

/** What the page knows, kept up to date for tests (`window.movanDemo`; see state.js). */
const demo = newDemoState(RULES);
// @ts-ignore
window.movanDemo = demo;
// For tests: redraws the page after a test changed `movanDemo` (the browser test moves a square to check the layout).
// @ts-ignore
window.movanDemoRender = () => render();

// ---- the page ----

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  conn: $('conn'),
  reconnecting: $('reconnecting'),
  reconnectingDetail: $('reconnecting-detail'),
  message: $('message'),
  loginPanel: $('login-panel'),
  loginForm: /** @type {HTMLFormElement} */ ($('login-form')),
  username: /** @type {HTMLInputElement} */ ($('username')),
  password: /** @type {HTMLInputElement} */ ($('password')),
  login: /** @type {HTMLButtonElement} */ ($('login')),
  playerPanel: $('player-panel'),
  youSwatch: $('you-swatch'),
  youName: $('you-name'),
  youUid: $('you-uid'),
  quickMatch: /** @type {HTMLButtonElement} */ ($('quick-match')),
  spectateRoom: /** @type {HTMLInputElement} */ ($('spectate-room')),
  spectate: /** @type {HTMLButtonElement} */ ($('spectate')),
  ready: /** @type {HTMLButtonElement} */ ($('ready')),
  leave: /** @type {HTMLButtonElement} */ ($('leave')),
  roomPanel: $('room-panel'),
  roomId: $('room-id'),
  roomStatus: $('room-status'),
  roomCount: $('room-count'),
  members: $('members'),
  statsPanel: $('stats-panel'),
  frame: $('frame'),
  rtt: $('rtt'),
  hash: $('hash'),
  score: $('score'),
  sync: $('sync'),
  coinsToWin: $('coins-to-win'),
  canvas: /** @type {HTMLCanvasElement} */ ($('canvas')),
  overlay: $('overlay'),
  overlayText: $('overlay-text'),
};

/** @type {GameSession|null} */
let game = null;
/** @type {import('./game.js').GameState|null} the running game's simulation */
let sim = null;
/** @type {ReturnType<typeof setTimeout>|undefined} */
let leaveTimer;
/** The autopilot's last move not yet seen in a frame (it waits for it), and the frame it was sent at. */
let autopilotSentAt = -1;
/** `game_start.checksum_interval`: report the state's checksum every this many frames (0 = the server checks none). */
let checksumInterval = 0;
/** @type {ReturnType<typeof setInterval>|undefined} */
let pingTimer;
let frameIntervalMs = 50;
let lastSentAt = 0;
/** "2/2 players, 2 to start", from the latest room_state. */
let roomCount = '';

ui.username.value = `player_${Math.random().toString(36).slice(2, 6)}`;
ui.coinsToWin.textContent = String(RULES.coinsToWin);

/**
 * @param {string} text
 * @param {'error'|'info'} [kind]
 */
function showMessage(text, kind = 'error') {
  if (kind === 'error') demo.error = text;
  ui.message.textContent = text;
  ui.message.className = `message ${kind}`;
  ui.message.hidden = false;
}

function clearMessage() {
  ui.message.hidden = true;
}

/** @param {unknown} e */
const describe = (e) => {
  const err = /** @type {any} */ (e);
  if (err?.code === 'too_many_attempts' && err.retryAfter) return `${err.message} (retry in ${err.retryAfter} s)`;
  return err?.code && err.code !== 'network' ? `${err.code}: ${err.message}` : String(err?.message ?? e);
};

/** The replay panel: while a replay is open, the board shows it instead of the live game. */
const replay = replayPanel({ demo, rules: RULES, onChange: () => render(), describe });

/** @param {string} uid */
function colorOf(uid) {
  const list = replay.active ? replay.players : demo.players.length ? demo.players : demo.members.map((m) => m.uid);
  const i = list.indexOf(uid);
  return i < 0 ? '#888' : COLORS[i % COLORS.length];
}

function me() {
  return demo.members.find((m) => m.uid === demo.uid);
}

/** Brings every panel, button and label in line with `demo`. */
function render() {
  const online = game !== null && demo.status !== 'closed';
  ui.login.disabled = demo.status === 'logging_in' || demo.status === 'connecting';
  ui.loginPanel.hidden = online;
  ui.playerPanel.hidden = demo.uid === null;
  ui.youName.textContent = demo.username ?? '';
  ui.youUid.textContent = demo.uid ?? '';
  ui.youSwatch.style.background = demo.uid ? colorOf(demo.uid) : 'transparent';

  const canAct = online && !demo.reconnecting;
  const inRoom = demo.room !== null;
  ui.quickMatch.disabled = !canAct || inRoom;
  ui.ready.disabled = !canAct || !inRoom || demo.spectating || demo.status !== 'waiting' || Boolean(me()?.ready);
  ui.spectate.disabled = !canAct || inRoom;
  ui.leave.disabled = !canAct || !inRoom;
  replay.render(online && !inRoom);

  ui.conn.textContent = demo.reconnecting ? 'reconnecting' : online ? 'connected' : 'offline';
  ui.conn.className = `pill ${demo.reconnecting ? 'warn' : online ? 'on' : 'off'}`;
  ui.reconnecting.hidden = !demo.reconnecting;

  ui.roomPanel.hidden = !inRoom;
  ui.roomId.textContent = demo.room ?? '';
  ui.roomStatus.textContent =
    demo.status === 'playing' ? 'playing' : demo.status === 'ended' ? 'game won' : 'waiting for players';
  ui.roomCount.textContent = roomCount;
  ui.members.replaceChildren(
    ...demo.members.map((m) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colorOf(m.uid);
      const name = document.createElement('span');
      name.className = 'mono';
      name.textContent = m.uid === demo.uid ? `${m.uid} (you)` : m.uid;
      const ready = document.createElement('span');
      ready.className = `badge ${m.ready ? 'ok' : ''}`;
      ready.textContent = m.ready ? 'ready' : 'not ready';
      const conn = document.createElement('span');
      conn.className = `badge ${m.connected ? 'ok' : 'bad'}`;
      conn.textContent = m.connected ? 'connected' : 'offline';
      li.append(sw, name, ready, conn);
      return li;
    }),
  );

  ui.statsPanel.hidden = demo.players.length === 0;
  ui.frame.textContent = demo.frame >= 0 ? String(demo.frame) : '–';
  ui.rtt.textContent = demo.rttMs === null ? '–' : `${demo.rttMs.toFixed(0)} ms`;
  ui.hash.textContent = demo.stateHash || '–';
  ui.score.textContent = scoreText();

  let overlay = '';
  if (demo.status === 'logged_out' || demo.status === 'logging_in') overlay = 'Sign in to play';
  else if (demo.status === 'connecting') overlay = 'Connecting…';
  else if (demo.status === 'lobby') overlay = 'Press “Quick match” to find a room';
  else if (demo.status === 'waiting' && demo.spectating) overlay = 'Watching: waiting for the players…';
  else if (demo.status === 'waiting') overlay = me()?.ready ? 'Waiting for the others to get ready…' : 'Press “Ready”';
  else if (demo.status === 'ended') overlay = `${resultText()}\n${demo.spectating ? 'Watching' : 'Leaving…'}`;
  else if (demo.status === 'game_over') {
    const reason = demo.gameOver?.reason ?? '';
    const over = `Game over${reason ? `: ${reason.replace(/_/g, ' ')}` : ''}`;
    if (demo.winner !== null) overlay = `${resultText()}\n${demo.left ? 'You left the room' : over}`;
    else overlay = `${over}\n${demo.gameOver?.frame_count ?? 0} frames`;
  } else if (demo.status === 'closed') overlay = 'Disconnected';
  if (replay.active) overlay = replay.overlayText();
  ui.overlayText.textContent = overlay;
  ui.overlay.hidden = overlay === '';
  demo.boxes = pieceBoxes(ui.canvas, boardView());
  if (overlay) ui.overlay.className = `overlay ${overlayPlace(ui.canvas, ui.overlayText, demo.boxes, demo.uid)}`;
  drawSoon();
}

/** "1001 wins" and the final scores: the same text in every tab of the game. */
function resultText() {
  return `${demo.winner} wins\n${demo.players.map((uid) => `${uid}: ${demo.scores[uid] ?? 0}`).join(' · ')}`;
}

/** Each player's coins, and what wins. */
function scoreText() {
  if (demo.players.length === 0) return '–';
  const scores = demo.players.map((uid) => `${uid === demo.uid ? 'you' : uid} ${demo.scores[uid] ?? 0}`);
  return `${scores.join(' · ')} (first to ${RULES.coinsToWin})`;
}

/** @returns {import('./board.js').BoardView} */
function boardView() {
  if (replay.active) return { ...replay.view(), me: demo.uid, colorOf, faded: () => false };
  return {
    players: demo.players,
    positions: demo.positions,
    coins: demo.coins,
    me: demo.uid,
    colorOf,
    faded: (uid) => {
      const member = demo.members.find((m) => m.uid === uid);
      return demo.status === 'playing' && (!member || !member.connected);
    },
  };
}

let drawPending = false;
function drawSoon() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

function draw() {
  demo.boxes = drawBoard(ui.canvas, boardView());
}

// ---- input ----

listenToKeys();

/**
 * Called on every frame: sends at most one move per tick, only while a key is held (or was tapped), and never twice
 * for a burst of frames (a reload after a reconnect delivers many at once).
 */
function maybeSendInput() {
  if (!game || !sim || demo.status !== 'playing' || demo.reconnecting) return;
  if (!demo.uid || !demo.players.includes(demo.uid)) return;
  const now = performance.now();
  if (now - lastSentAt < frameIntervalMs * 0.6) return;
  // The autopilot sends its next step once the last one came back in a frame (or, lost, 20 frames later).
  if (demo.autopilot && autopilotSentAt >= 0 && demo.frame - autopilotSentAt < 20) return;
  const [dx, dy] = demo.autopilot ? stepTowardCoin(sim, demo.uid) : direction();
  if (dx === 0 && dy === 0) return;
  try {
    game.sendAction({ move: [dx, dy] });
    lastSentAt = now;
    forgetTap();
    demo.sent += 1;
    if (demo.autopilot) autopilotSentAt = demo.frame;
  } catch {
    // Down, about to reconnect: this input is lost, like any input sent on a dropped connection.
  }
}

// ---- the session ----

/** Forgets the last game (a new room, or leaving). */
function forgetGame() {
  sim = null;
  clearTimeout(leaveTimer);
  autopilotSentAt = -1;
  demo.players = [];
  demo.positions = {};
  demo.scores = {};
  demo.coins = [];
  demo.winner = null;
  demo.endFrame = null;
  demo.frame = -1;
  demo.stateHash = '';
  demo.left = false;
}

/** @param {any} state */
function onRoomState(state) {
  if (demo.status === 'game_over' || demo.status === 'lobby') forgetGame(); // a new room
  demo.room = state.room_id;
  demo.members = state.members ?? [];
  demo.spectators = state.spectators ?? 0;
  const watching = demo.spectators > 0 ? ` · ${demo.spectators} watching` : '';
  roomCount = `${demo.members.length}/${state.capacity} players (${state.min_players} to start)${watching}`;
  if (demo.spectating) roomCount += ' · you are watching';
  // After the simulation's end the room still plays until its players left.
  if (demo.status === 'ended') {
    // Stays ended.
  } else if (state.status === 'playing') demo.status = 'playing';
  else if (demo.status !== 'playing') demo.status = 'waiting';
  render();
}

/** @param {any} start */
function onGameStart(start) {
  forgetGame();
  replay.gameStarted(start);
  frameIntervalMs = start.frame_interval_ms || 50;
  sim = newGame(start.members, start.seed, RULES);
  // The page shows the simulation's own objects, which applyFrame changes in place.
  demo.players = sim.members;
  demo.positions = sim.positions;
  demo.scores = sim.scores;
  demo.coins = sim.coins;
  demo.start = structuredClone(sim.positions);
  demo.stateHash = stateHash(sim);
  demo.history = [];
  demo.sent = 0;
  demo.gameOver = null;
  forgetKeys();
  demo.room = start.room_id;
  demo.status = 'playing';
  checksumInterval = start.checksum_interval ?? 0;
  ui.sync.textContent = checksumInterval > 0 ? 'in sync' : 'not checked';
  clearMessage();
  render();
}

/** @param {{frame_count: number, actions: any[]}} frame */
function onFrame(frame) {
  if (!sim || (demo.status !== 'playing' && demo.status !== 'ended')) return;
  const ended = applyFrame(sim, frame);
  demo.frame = frame.frame_count;
  demo.stateHash = stateHash(sim);
  demo.history.push([demo.frame, demo.stateHash]);
  if (demo.history.length > HISTORY_MAX) demo.history.splice(0, demo.history.length - HISTORY_MAX);
  if (checksumInterval > 0 && demo.frame % checksumInterval === 0 && demo.players.includes(demo.uid ?? '')) {
    try {
      game?.sendChecksum(demo.frame, demo.stateHash);
    } catch {
      // Reconnecting: this frame goes unchecked.
    }
  }
  if (frame.actions?.some((a) => a?.uid === demo.uid)) autopilotSentAt = -1;
  if (ended) onSimulationEnd();
  else maybeSendInput();
  ui.frame.textContent = String(demo.frame);
  ui.hash.textContent = demo.stateHash;
  ui.score.textContent = scoreText();
  drawSoon();
}

/** The simulation has a winner: show it, stop sending, and (players) leave the room after a pause. */
function onSimulationEnd() {
  if (!sim) return;
  demo.winner = sim.winner;
  demo.endFrame = sim.endFrame;
  demo.status = 'ended';
  forgetKeys();
  if (!demo.spectating && demo.players.includes(demo.uid ?? '')) leaveSoon(LEAVE_AFTER_MS);
  render();
}

/**
 * Leaves the ended game's room after `ms`: when every player left, the server ends the game (`all_left`).
 * @param {number} ms
 */
function leaveSoon(ms) {
  clearTimeout(leaveTimer);
  leaveTimer = setTimeout(() => {
    if (demo.status !== 'ended') return;
    try {
      game?.leaveRoom();
    } catch {
      leaveSoon(500); // Reconnecting: once back.
    }
  }, ms);
}

/** @param {{room_id: string, reason?: string}} left */
function onRoomLeft(left) {
  if (demo.status === 'ended') {
    demo.status = 'game_over';
    demo.left = true;
    replay.gameEnded();
  } else if (demo.status !== 'game_over') {
    forgetGame();
    demo.status = 'lobby';
    if (left.reason) showMessage(`Out of room ${left.room_id}: ${left.reason.replace(/_/g, ' ')}.`, 'info');
  }
  demo.spectating = false;
  demo.room = null;
  demo.members = [];
  render();
}

/** @param {any} over */
function onGameOver(over) {
  clearTimeout(leaveTimer);
  demo.status = 'game_over';
  demo.spectating = false;
  demo.gameOver = over;
  demo.room = null;
  demo.members = [];
  replay.gameEnded();
  render();
}

/** @param {{code: string, message: string, proto: string|null}} err */
function onServerError(err) {
  if (err.code === 'not_in_room' && err.proto === 'sync_request_reload_frames') {
    // Back too late: the reconnect grace ran out and the game went on without us.
    forgetGame();
    demo.status = 'lobby';
    demo.room = null;
    demo.members = [];
    showMessage('You were away too long: your seat is gone. Quick match to play again.');
    render();
    return;
  }
  if (err.proto === 'room_spectate') {
    demo.spectating = false;
    if (err.code === 'room_not_found' && demo.room !== null) {
      // Watching again after a reconnect, too late: the game ended meanwhile.
      demo.status = demo.winner !== null ? 'game_over' : 'lobby';
      demo.room = null;
      demo.members = [];
    }
    render();
  }
  showMessage(`${err.code}: ${err.message}`);
}

function startPinging() {
  clearInterval(pingTimer);
  const ping = () => {
    if (!game?.connection) return;
    try {
      game.ping();
    } catch {
      // Reconnecting; the next one will do.
    }
  };
  ping();
  pingTimer = setInterval(ping, PING_EVERY_MS);
}

/** @param {SubmitEvent} e */
async function onLogin(e) {
  e.preventDefault();
  if (demo.status === 'logging_in' || demo.status === 'connecting') return;
  const username = ui.username.value.trim();
  const password = ui.password.value;
  clearMessage();
  demo.status = 'logging_in';
  render();
  try {
    const account = new AccountClient(location.origin);
    const session = await account.registerOrLogin(username, password);
    const url = /** @type {any} */ (session).sync_ws_url;
    if (!url) throw new Error('the login named no WebSocket endpoint (sync_ws_url): is sync.ws_addr set?');
    demo.uid = session.uid;
    demo.username = username;
    demo.status = 'connecting';
    render();
    const g = new GameSession({ session, url, account });
    g.on('room_state', onRoomState);
    g.on('game_start', onGameStart);
    g.on('frame', onFrame);
    g.on('game_over', onGameOver);
    g.on('room_left', onRoomLeft);
    g.on('error', onServerError);
    g.on('desync', (/** @type {any} */ d) => {
      const mine = d.majority !== null && !d.groups.some((/** @type {any} */ x) => x.hash === d.majority && x.uids.includes(demo.uid));
      const who = d.majority === null ? 'no majority' : mine ? 'you diverged' : 'another player diverged';
      ui.sync.textContent = `desync at frame ${d.frame} (${who})`;
      showMessage(`The players' states differ at frame ${d.frame}: ${who}.`);
    });
    g.on('pong', (/** @type {any} */ p) => {
      if (typeof p?.timestamp !== 'number') return;
      demo.rttMs = Math.max(0, Date.now() - p.timestamp * 1000);
      ui.rtt.textContent = `${demo.rttMs.toFixed(0)} ms`;
    });
    g.on('reconnecting', (/** @type {any} */ r) => {
      if (!demo.reconnecting) {
        // The first attempt's error is why the connection dropped; later ones are why the last attempt failed.
        demo.reconnects += 1;
        demo.dropReason = r.error ?? null;
      }
      demo.reconnecting = true;
      const last = r.attempt > 1 && r.error ? `, the last one failed: ${r.error}` : '';
      ui.reconnectingDetail.textContent = `${demo.dropReason ?? 'connection lost'}. Attempt ${r.attempt}${last}`;
      forgetKeys();
      render();
    });
    g.on('reconnected', () => {
      demo.reconnecting = false;
      demo.dropReason = null;
      render();
    });
    g.on('close', (/** @type {any} */ info) => {
      if (game !== g) return;
      clearInterval(pingTimer);
      clearTimeout(leaveTimer);
      demo.reconnecting = false;
      demo.dropReason = null;
      demo.status = 'closed';
      demo.room = null;
      demo.members = [];
      game = null;
      if (info?.error) showMessage(`Disconnected: ${describe(info.error)}. Sign in again to play.`);
      render();
    });
    await g.open();
    game = g;
    demo.status = 'lobby';
    replay.signIn(account, () => g.session.token);
    startPinging();
    render();
  } catch (err) {
    if (!game) {
      demo.status = 'logged_out';
      demo.uid = null;
      demo.username = null;
    }
    showMessage(describe(err));
    render();
  }
}

ui.loginForm.addEventListener('submit', onLogin);
// The board's message is placed by the board's size on screen.
window.addEventListener('resize', () => render());
ui.quickMatch.addEventListener('click', () => {
  if (!game) return;
  clearMessage();
  try {
    game.enterRoom(null);
  } catch (e) {
    showMessage(describe(e));
  }
});
ui.spectate.addEventListener('click', () => {
  const roomId = ui.spectateRoom.value.trim();
  if (!game || !roomId) return;
  clearMessage();
  try {
    game.spectate(roomId);
    demo.spectating = true;
  } catch (e) {
    showMessage(describe(e));
  }
  render();
});
ui.ready.addEventListener('click', () => {
  try {
    game?.prepare();
  } catch (e) {
    showMessage(describe(e));
  }
});
ui.leave.addEventListener('click', () => {
  try {
    game?.leaveRoom();
  } catch (e) {
    showMessage(describe(e));
    return;
  }
  // Out at once; the server's room_left (onRoomLeft) confirms it.
  forgetGame();
  demo.spectating = false;
  demo.status = 'lobby';
  demo.room = null;
  demo.members = [];
  render();
});

render();

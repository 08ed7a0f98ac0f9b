// Movan web demo: log in, quick-match, get ready, and move a coloured square around a shared board.
//
// The board is a lockstep simulation: a square moves only when a `sync_frame` carries that player's
// `{"move":[dx,dy]}` action, and every player applies the same frames in the same order, so every tab shows the same
// board. Keys only decide which action to send next; they never move anything locally.
//
// For tests, `window.movanDemo` holds the current state (see `demo` below).

import { AccountClient, GameSession } from '../js/movan.js';

/** Board size in cells, and the size of one cell in CSS pixels. */
const BOARD_W = 26;
const BOARD_H = 18;
const CELL = 20;
/** Colours by position in `game_start.members` (or in the room before the game). */
const COLORS = ['#e4572e', '#29a3e0', '#f3a712', '#8cc63f', '#b86bd8', '#2ec4b6', '#ff7aa8', '#c0c0c0'];
/** How often to ping for the round-trip time, ms. */
const PING_EVERY_MS = 2000;
/** The font of the labels over the squares, and their height above the baseline, in board pixels. */
const LABEL_FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
const LABEL_HEIGHT = 13;
/** The board message's distance from the board's edges, CSS pixels (`.overlay` padding in demo.css). */
const OVERLAY_PAD = 12;
/** Entries kept in `movanDemo.history`. */
const HISTORY_MAX = 400;

const KEYS = {
  ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
  a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1],
  A: [-1, 0], D: [1, 0], W: [0, -1], S: [0, 1],
};

/**
 * What the page knows, kept up to date for tests (`window.movanDemo`).
 * status: logged_out | logging_in | connecting | lobby | waiting | playing | game_over | closed
 */
const demo = {
  status: 'logged_out',
  uid: /** @type {string|null} */ (null),
  username: /** @type {string|null} */ (null),
  /** True while the sync connection is down and the session is getting it back. */
  reconnecting: false,
  /** How many times the connection dropped and the session started to reconnect. */
  reconnects: 0,
  /** @type {string|null} */
  room: null,
  /** @type {{uid: string, ready: boolean, connected: boolean}[]} */
  members: [],
  /** @type {string[]} the players of the running game, in `game_start` order */
  players: [],
  /** The last frame applied (-1 before the first frame of a game). */
  frame: -1,
  /** @type {Record<string, [number, number]>} uid -> [x, y] after `frame` */
  positions: {},
  /** @type {Record<string, [number, number]>} uid -> [x, y] at game start */
  start: {},
  /** The positions after `frame`, as a string: "uid:x,y|uid:x,y" in `game_start.members` order. */
  stateHash: '',
  /** @type {[number, string][]} (frame, stateHash) for the latest frames, oldest first */
  history: [],
  /** @type {number|null} the latest ping round trip, ms */
  rttMs: null,
  /** Actions this page sent in the current game. */
  sent: 0,
  /** True while this page watches a room (`room_spectate`) instead of playing. */
  spectating: false,
  /** Spectators of the current room, from `room_state`. */
  spectators: 0,
  /** @type {any} the last `game_over` */
  gameOver: null,
  /** @type {string|null} the last error shown */
  error: null,
  /** @type {string|null} why the connection dropped, in words, while reconnecting (e.g. "connection closed: ...") */
  dropReason: null,
  /** @type {Record<string, Box>} each player's square and label on the board, in board pixels */
  boxes: {},
};
// @ts-ignore
window.movanDemo = demo;
/** @typedef {{x: number, y: number, w: number, h: number}} Box a rectangle in board pixels (520 x 360) */
// For tests: redraws the page after a test changed `movanDemo` (the browser test moves a square to check the layout).
// @ts-ignore
window.movanDemoRender = () => render();

// ---- the simulation: pure functions of game_start and the frames ----

/**
 * mulberry32: a tiny deterministic PRNG (the same numbers in every JavaScript engine).
 * @param {number} seed
 */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Start positions: drawn from the game's shared seed, one free cell per member, in `members` order.
 * @param {string[]} members
 * @param {number} seed
 * @returns {Record<string, [number, number]>}
 */
function startPositions(members, seed) {
  const next = rng(seed);
  /** @type {Record<string, [number, number]>} */
  const pos = {};
  const taken = new Set();
  for (const uid of members) {
    let x = 0;
    let y = 0;
    for (let tries = 0; tries < 100; tries++) {
      x = 2 + Math.floor(next() * (BOARD_W - 4));
      y = 2 + Math.floor(next() * (BOARD_H - 4));
      if (!taken.has(`${x},${y}`)) break;
    }
    taken.add(`${x},${y}`);
    pos[uid] = [x, y];
  }
  return pos;
}

/** @param {unknown} v */
const isStep = (v) => v === -1 || v === 0 || v === 1;

/**
 * Applies one frame's actions in order; unknown players and malformed actions are ignored, positions are clamped to
 * the board.
 * @param {Record<string, [number, number]>} pos
 * @param {{actions: any[]}} frame
 */
function applyFrame(pos, frame) {
  for (const action of frame.actions ?? []) {
    const p = pos[action?.uid];
    const move = action?.extra_data?.action_data?.move;
    if (!p || !Array.isArray(move) || move.length !== 2 || !isStep(move[0]) || !isStep(move[1])) continue;
    p[0] = Math.min(BOARD_W - 1, Math.max(0, p[0] + move[0]));
    p[1] = Math.min(BOARD_H - 1, Math.max(0, p[1] + move[1]));
  }
}

/**
 * @param {string[]} members
 * @param {Record<string, [number, number]>} pos
 */
const stateHash = (members, pos) => members.map((uid) => `${uid}:${pos[uid][0]},${pos[uid][1]}`).join('|');

/**
 * FNV-1a (32-bit) of the state, as 8 hex digits: what the demo reports in `sync_checksum` (docs/protocol.md §4.8).
 * @param {string} text
 */
const checksumOf = (text) => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
};

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
  sync: $('sync'),
  canvas: /** @type {HTMLCanvasElement} */ ($('canvas')),
  overlay: $('overlay'),
  overlayText: $('overlay-text'),
};

/** @type {GameSession|null} */
let game = null;
/** `game_start.checksum_interval`: report the state's checksum every this many frames (0 = the server checks none). */
let checksumInterval = 0;
/** @type {ReturnType<typeof setInterval>|undefined} */
let pingTimer;
let frameIntervalMs = 50;
let lastSentAt = 0;
/** "2/2 players, 2 to start", from the latest room_state. */
let roomCount = '';
/** Keys held now, and a direction tapped since the last send (so a short tap still moves). */
const held = new Set();
/** @type {[number, number]|null} */
let tapped = null;

ui.username.value = `player_${Math.random().toString(36).slice(2, 6)}`;

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

/** @param {string} uid */
function colorOf(uid) {
  const list = demo.players.length ? demo.players : demo.members.map((m) => m.uid);
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

  ui.conn.textContent = demo.reconnecting ? 'reconnecting' : online ? 'connected' : 'offline';
  ui.conn.className = `pill ${demo.reconnecting ? 'warn' : online ? 'on' : 'off'}`;
  ui.reconnecting.hidden = !demo.reconnecting;

  ui.roomPanel.hidden = !inRoom;
  ui.roomId.textContent = demo.room ?? '';
  ui.roomStatus.textContent = demo.status === 'playing' ? 'playing' : 'waiting for players';
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

  let overlay = '';
  if (demo.status === 'logged_out' || demo.status === 'logging_in') overlay = 'Sign in to play';
  else if (demo.status === 'connecting') overlay = 'Connecting…';
  else if (demo.status === 'lobby') overlay = 'Press “Quick match” to find a room';
  else if (demo.status === 'waiting' && demo.spectating) overlay = 'Watching: waiting for the players…';
  else if (demo.status === 'waiting') overlay = me()?.ready ? 'Waiting for the others to get ready…' : 'Press “Ready”';
  else if (demo.status === 'game_over') {
    const reason = demo.gameOver?.reason ?? '';
    overlay = `Game over${reason ? `: ${reason.replace(/_/g, ' ')}` : ''}\n${demo.gameOver?.frame_count ?? 0} frames`;
  } else if (demo.status === 'closed') overlay = 'Disconnected';
  ui.overlayText.textContent = overlay;
  ui.overlay.hidden = overlay === '';
  demo.boxes = pieceBoxes();
  if (overlay) ui.overlay.className = `overlay ${overlayPlace(demo.boxes)}`;
  drawSoon();
}

/**
 * Where a player's square and label are drawn.
 * @param {CanvasRenderingContext2D} g with `LABEL_FONT` set
 * @param {string} uid
 * @param {[number, number]} p the square's cell
 */
function piece(g, uid, p) {
  const label = uid === demo.uid ? 'you' : uid;
  const half = g.measureText(label).width / 2;
  // Above the square, or below it on the top row; anchored left or right near the side edges.
  const labelY = p[1] === 0 ? CELL * 2 + 2 : p[1] * CELL;
  const labelX = Math.min(BOARD_W * CELL - half - 1, Math.max(half + 1, p[0] * CELL + CELL / 2));
  const x = Math.min(p[0] * CELL, labelX - half);
  const y = Math.min(p[1] * CELL, labelY - LABEL_HEIGHT);
  const right = Math.max((p[0] + 1) * CELL, labelX + half);
  const bottom = Math.max((p[1] + 1) * CELL, labelY);
  return { label, labelX, labelY, box: { x, y, w: right - x, h: bottom - y } };
}

/** @returns {Record<string, Box>} the square and label of every player on the board */
function pieceBoxes() {
  const g = /** @type {CanvasRenderingContext2D} */ (ui.canvas.getContext('2d'));
  g.font = LABEL_FONT;
  /** @type {Record<string, Box>} */
  const boxes = {};
  for (const uid of demo.players) {
    const p = demo.positions[uid];
    if (p) boxes[uid] = piece(g, uid, p).box;
  }
  return boxes;
}

/**
 * Where the board's message goes: the band (middle, top or bottom) that covers neither your square nor its label,
 * and of those the one that covers the fewest other squares (the middle first on a tie).
 * @param {Record<string, Box>} boxes
 * @returns {'middle'|'top'|'bottom'}
 */
function overlayPlace(boxes) {
  const scale = ui.canvas.clientWidth / (BOARD_W * CELL);
  const card = ui.overlayText;
  if (!scale || !card.offsetHeight || Object.keys(boxes).length === 0) return 'middle';
  const [cw, ch, pad] = [card.offsetWidth / scale, card.offsetHeight / scale, OVERLAY_PAD / scale];
  const x = (BOARD_W * CELL - cw) / 2;
  /** @type {['middle'|'top'|'bottom', number][]} the card's top in each band */
  const bands = [['middle', (BOARD_H * CELL - ch) / 2], ['top', pad], ['bottom', BOARD_H * CELL - pad - ch]];
  const covers = (/** @type {Box} */ b, /** @type {number} */ y) =>
    b.x < x + cw && x < b.x + b.w && b.y < y + ch && y < b.y + b.h;
  let best = bands[0][0];
  let bestScore = Infinity;
  for (const [name, y] of bands) {
    let score = 0;
    for (const [uid, b] of Object.entries(boxes)) if (covers(b, y)) score += uid === demo.uid ? 1000 : 1;
    if (score < bestScore) [best, bestScore] = [name, score];
  }
  return best;
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
  const dpr = window.devicePixelRatio || 1;
  const w = BOARD_W * CELL;
  const h = BOARD_H * CELL;
  const c = ui.canvas;
  if (c.width !== w * dpr || c.height !== h * dpr) {
    c.width = w * dpr;
    c.height = h * dpr;
    c.style.aspectRatio = `${w} / ${h}`;
  }
  const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = '#141a24';
  g.fillRect(0, 0, w, h);
  g.strokeStyle = '#1f2836';
  g.lineWidth = 1;
  g.beginPath();
  for (let x = 0; x <= BOARD_W; x++) {
    g.moveTo(x * CELL + 0.5, 0);
    g.lineTo(x * CELL + 0.5, h);
  }
  for (let y = 0; y <= BOARD_H; y++) {
    g.moveTo(0, y * CELL + 0.5);
    g.lineTo(w, y * CELL + 0.5);
  }
  g.stroke();
  g.font = LABEL_FONT;
  demo.boxes = {};
  g.textAlign = 'center';
  g.textBaseline = 'bottom';
  for (const uid of demo.players) {
    const p = demo.positions[uid];
    if (!p) continue;
    const member = demo.members.find((m) => m.uid === uid);
    const gone = demo.status === 'playing' && (!member || !member.connected);
    g.globalAlpha = gone ? 0.35 : 1;
    g.fillStyle = colorOf(uid);
    g.fillRect(p[0] * CELL + 2, p[1] * CELL + 2, CELL - 3, CELL - 3);
    if (uid === demo.uid) {
      g.strokeStyle = '#ffffff';
      g.lineWidth = 2;
      g.strokeRect(p[0] * CELL + 2, p[1] * CELL + 2, CELL - 3, CELL - 3);
    }
    g.fillStyle = '#e6edf3';
    const { label, labelX, labelY, box } = piece(g, uid, p);
    g.fillText(label, labelX, labelY);
    demo.boxes[uid] = box;
    g.globalAlpha = 1;
  }
}

// ---- input ----

/** The direction of the keys held now (and of a tap since the last send). */
function direction() {
  let dx = 0;
  let dy = 0;
  for (const k of held) {
    dx += KEYS[/** @type {keyof KEYS} */ (k)][0];
    dy += KEYS[/** @type {keyof KEYS} */ (k)][1];
  }
  dx = Math.sign(dx);
  dy = Math.sign(dy);
  if (dx === 0 && dy === 0 && tapped) [dx, dy] = tapped;
  return [dx, dy];
}

window.addEventListener('keydown', (e) => {
  if (!(e.key in KEYS) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof HTMLInputElement) return;
  e.preventDefault();
  held.add(e.key);
  tapped = KEYS[/** @type {keyof KEYS} */ (e.key)];
});
window.addEventListener('keyup', (e) => {
  held.delete(e.key);
  // Shift or Caps Lock may change the key between down and up.
  held.delete(e.key.toLowerCase());
  held.delete(e.key.toUpperCase());
});
window.addEventListener('blur', () => held.clear());

/**
 * Called on every frame: sends at most one move per tick, only while a key is held (or was tapped), and never twice
 * for a burst of frames (a reload after a reconnect delivers many at once).
 */
function maybeSendInput() {
  if (!game || demo.status !== 'playing' || demo.reconnecting || !demo.uid || !demo.players.includes(demo.uid)) return;
  const now = performance.now();
  if (now - lastSentAt < frameIntervalMs * 0.6) return;
  const [dx, dy] = direction();
  if (dx === 0 && dy === 0) return;
  try {
    game.sendAction({ move: [dx, dy] });
    lastSentAt = now;
    tapped = null;
    demo.sent += 1;
  } catch {
    // Down, about to reconnect: this input is lost, like any input sent on a dropped connection.
  }
}

// ---- the session ----

/** @param {any} state */
function onRoomState(state) {
  if (demo.status === 'game_over' || demo.status === 'lobby') {
    // A new room: forget the last game's board.
    demo.players = [];
    demo.positions = {};
    demo.frame = -1;
    demo.stateHash = '';
  }
  demo.room = state.room_id;
  demo.members = state.members ?? [];
  demo.spectators = state.spectators ?? 0;
  const watching = demo.spectators > 0 ? ` · ${demo.spectators} watching` : '';
  roomCount = `${demo.members.length}/${state.capacity} players (${state.min_players} to start)${watching}`;
  if (demo.spectating) roomCount += ' · you are watching';
  if (state.status === 'playing') demo.status = 'playing';
  else if (demo.status !== 'playing') demo.status = 'waiting';
  render();
}

/** @param {any} start */
function onGameStart(start) {
  frameIntervalMs = start.frame_interval_ms || 50;
  demo.players = [...start.members];
  demo.positions = startPositions(demo.players, start.seed);
  demo.start = structuredClone(demo.positions);
  demo.frame = -1;
  demo.stateHash = stateHash(demo.players, demo.positions);
  demo.history = [];
  demo.sent = 0;
  demo.gameOver = null;
  tapped = null;
  demo.room = start.room_id;
  demo.status = 'playing';
  checksumInterval = start.checksum_interval ?? 0;
  ui.sync.textContent = checksumInterval > 0 ? 'in sync' : 'not checked';
  clearMessage();
  render();
}

/** @param {{frame_count: number, actions: any[]}} frame */
function onFrame(frame) {
  if (demo.status !== 'playing' || demo.players.length === 0) return;
  applyFrame(demo.positions, frame);
  demo.frame = frame.frame_count;
  demo.stateHash = stateHash(demo.players, demo.positions);
  demo.history.push([demo.frame, demo.stateHash]);
  if (demo.history.length > HISTORY_MAX) demo.history.splice(0, demo.history.length - HISTORY_MAX);
  if (checksumInterval > 0 && demo.frame % checksumInterval === 0 && demo.players.includes(demo.uid ?? '')) {
    try {
      game?.sendChecksum(demo.frame, checksumOf(demo.stateHash));
    } catch {
      // Reconnecting: this frame goes unchecked.
    }
  }
  maybeSendInput();
  ui.frame.textContent = String(demo.frame);
  ui.hash.textContent = demo.stateHash;
  drawSoon();
}

/** @param {any} over */
function onGameOver(over) {
  demo.status = 'game_over';
  demo.spectating = false;
  demo.gameOver = over;
  demo.room = null;
  demo.members = [];
  render();
}

/** @param {{code: string, message: string, proto: string|null}} err */
function onServerError(err) {
  if (err.code === 'not_in_room' && err.proto === 'sync_request_reload_frames') {
    // Back too late: the reconnect grace ran out and the game went on without us.
    demo.status = 'lobby';
    demo.room = null;
    demo.members = [];
    showMessage('You were away too long: your seat is gone. Quick match to play again.');
    render();
    return;
  }
  if (err.proto === 'room_spectate') {
    demo.spectating = false;
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
      held.clear();
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
  // The leaver gets no reply (docs/protocol.md §4.3).
  demo.spectating = false;
  demo.status = 'lobby';
  demo.room = null;
  demo.members = [];
  demo.players = [];
  demo.frame = -1;
  demo.stateHash = '';
  render();
});

render();

// The demo's board on a canvas: the grid, the coins, every player's square with its label, and where the board's
// message may go without covering your square. Reads the game state, never changes it.

import { BOARD_H, BOARD_W } from './game.js';

/** The size of one cell in board pixels (CSS pixels at scale 1). */
export const CELL = 20;
/** The font of the labels over the squares, and their height above the baseline, in board pixels. */
const LABEL_FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
const LABEL_HEIGHT = 13;
/** The board message's distance from the board's edges, CSS pixels (`.overlay` padding in demo.css). */
const OVERLAY_PAD = 12;
const COIN_COLOR = '#ffd23f';

/** @typedef {{x: number, y: number, w: number, h: number}} Box a rectangle in board pixels (520 x 360) */

/**
 * What the board shows.
 * @typedef {object} BoardView
 * @property {string[]} players in `game_start.members` order
 * @property {Record<string, [number, number]>} positions
 * @property {[number, number][]} coins
 * @property {string|null} me your uid
 * @property {(uid: string) => string} colorOf
 * @property {(uid: string) => boolean} faded a player drawn faded (offline)
 */

/**
 * Where a player's square and label are drawn.
 * @param {CanvasRenderingContext2D} g with `LABEL_FONT` set
 * @param {string} label
 * @param {[number, number]} p the square's cell
 */
function piece(g, label, p) {
  const half = g.measureText(label).width / 2;
  // Above the square, or below it on the top row; anchored left or right near the side edges.
  const labelY = p[1] === 0 ? CELL * 2 + 2 : p[1] * CELL;
  const labelX = Math.min(BOARD_W * CELL - half - 1, Math.max(half + 1, p[0] * CELL + CELL / 2));
  const x = Math.min(p[0] * CELL, labelX - half);
  const y = Math.min(p[1] * CELL, labelY - LABEL_HEIGHT);
  const right = Math.max((p[0] + 1) * CELL, labelX + half);
  const bottom = Math.max((p[1] + 1) * CELL, labelY);
  return { labelX, labelY, box: { x, y, w: right - x, h: bottom - y } };
}

/** @param {BoardView} view @param {string} uid */
const labelOf = (view, uid) => (uid === view.me ? 'you' : uid);

/**
 * The square and label of every player on the board.
 * @param {HTMLCanvasElement} canvas
 * @param {BoardView} view
 * @returns {Record<string, Box>}
 */
export function pieceBoxes(canvas, view) {
  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  g.font = LABEL_FONT;
  /** @type {Record<string, Box>} */
  const boxes = {};
  for (const uid of view.players) {
    const p = view.positions[uid];
    if (p) boxes[uid] = piece(g, labelOf(view, uid), p).box;
  }
  return boxes;
}

/**
 * Where the board's message goes: the band (middle, top or bottom) that covers neither your square nor its label,
 * and of those the one that covers the fewest other squares (the middle first on a tie).
 * @param {HTMLCanvasElement} canvas
 * @param {HTMLElement} card the message
 * @param {Record<string, Box>} boxes
 * @param {string|null} me
 * @returns {'middle'|'top'|'bottom'}
 */
export function overlayPlace(canvas, card, boxes, me) {
  const scale = canvas.clientWidth / (BOARD_W * CELL);
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
    for (const [uid, b] of Object.entries(boxes)) if (covers(b, y)) score += uid === me ? 1000 : 1;
    if (score < bestScore) [best, bestScore] = [name, score];
  }
  return best;
}

/**
 * Draws the board; returns the boxes of the squares and labels it drew.
 * @param {HTMLCanvasElement} c
 * @param {BoardView} view
 * @returns {Record<string, Box>}
 */
export function drawBoard(c, view) {
  const dpr = window.devicePixelRatio || 1;
  const w = BOARD_W * CELL;
  const h = BOARD_H * CELL;
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
  g.fillStyle = COIN_COLOR;
  for (const [x, y] of view.coins) {
    g.beginPath();
    g.arc(x * CELL + CELL / 2 + 0.5, y * CELL + CELL / 2 + 0.5, CELL / 2 - 5, 0, 2 * Math.PI);
    g.fill();
  }
  g.font = LABEL_FONT;
  g.textAlign = 'center';
  g.textBaseline = 'bottom';
  /** @type {Record<string, Box>} */
  const boxes = {};
  for (const uid of view.players) {
    const p = view.positions[uid];
    if (!p) continue;
    g.globalAlpha = view.faded(uid) ? 0.35 : 1;
    g.fillStyle = view.colorOf(uid);
    g.fillRect(p[0] * CELL + 2, p[1] * CELL + 2, CELL - 3, CELL - 3);
    if (uid === view.me) {
      g.strokeStyle = '#ffffff';
      g.lineWidth = 2;
      g.strokeRect(p[0] * CELL + 2, p[1] * CELL + 2, CELL - 3, CELL - 3);
    }
    g.fillStyle = '#e6edf3';
    const label = labelOf(view, uid);
    const { labelX, labelY, box } = piece(g, label, p);
    g.fillText(label, labelX, labelY);
    boxes[uid] = box;
    g.globalAlpha = 1;
  }
  return boxes;
}

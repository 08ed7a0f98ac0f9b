// The demo's keyboard: arrow keys and WASD give the direction of the next move. Keys only choose what to send;
// nothing moves until a frame carries the move.

const KEYS = {
  ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
  a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1],
  A: [-1, 0], D: [1, 0], W: [0, -1], S: [0, 1],
};

/** Keys held now, and a direction tapped since the last send (so a short tap still moves). */
const held = new Set();
/** @type {[number, number]|null} */
let tapped = null;

/**
 * The direction of the keys held now, or of a tap since the last {@link forgetKeys}; `[0, 0]` for none.
 * @returns {[number, number]}
 */
export function direction() {
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

/** The last tap was sent (or no longer counts). */
export function forgetTap() {
  tapped = null;
}

/** Forgets the keys held and the last tap (the connection dropped, or the game ended). */
export function forgetKeys() {
  held.clear();
  tapped = null;
}

/** Starts listening to the window's keys. */
export function listenToKeys() {
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
}

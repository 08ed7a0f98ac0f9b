// A minimal event emitter (no dependency on Node's `events`, so it runs in browsers).

/** @typedef {(...args: any[]) => void} Listener */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Listener>>} */
    this._listeners = new Map();
  }

  /**
   * Adds `fn` for `event`.
   * @param {string} event
   * @param {Listener} fn
   * @returns {() => void} a function that removes the listener again
   */
  on(event, fn) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /**
   * Adds `fn` for the next `event` only.
   * @param {string} event
   * @param {Listener} fn
   * @returns {() => void} a function that removes the listener again
   */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /**
   * Removes `fn` from `event`.
   * @param {string} event
   * @param {Listener} fn
   */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop the others nor the caller: the exception
   * is rethrown from a microtask, so it shows up as an uncaught error instead of breaking the connection.
   * @param {string} event
   * @param {...any} args
   * @returns {boolean} whether any listener was called
   */
  emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    return true;
  }
}

#!/usr/bin/env python3
"""Issue 15: spectator fan-out. Four encrypted players act every tick in one room; 100 encrypted spectators watch it.

    scripts/spectator_fanout.py --account http://127.0.0.1:2026 --sync 127.0.0.1:2025 --pid PID
        [--spectators 100] [--seconds 15]

The spectators enter the room (`room_spectate`) while it waits, so they get every frame live. The sync server's CPU
is measured for `--seconds` of play, then every spectator's frames are checked against a player's: the same frame
numbers, byte for byte. Run it against a sync server with `max_spectators` >= `--spectators` (default 100).
Prints: server CPU with the spectators (and the players alone, before they come), and the check.
"""
import argparse, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reload_spam_probe import Player, cpu_secs  # noqa: E402


def measure(pid, seconds):
    c0, t0 = cpu_secs(pid), time.time()
    time.sleep(seconds)
    return (cpu_secs(pid) - c0) / (time.time() - t0) * 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", required=True)
    ap.add_argument("--sync", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--spectators", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    tag = str(int(time.time()))

    def game(room, watchers):
        players = [Player(a, f"fan{tag}{room}p{i}") for i in range(4)]
        for p in players:
            p.enter(room)
        players[0].keep = {}
        spectators = []
        for i in range(watchers):
            s = Player(a, f"fan{tag}{room}s{i}")
            s.keep = {}
            s.enter(room, "room_spectate")
            spectators.append(s)
        time.sleep(0.5)
        for p in players:
            p.send({"proto": "room_prepare"})
        while not all(p.started for p in players):
            time.sleep(0.05)
        stop = threading.Event()

        def act():
            n = 0
            while not stop.is_set():
                for p in players:
                    p.send({"proto": "sync_action", "timestamp": time.time(), "action_data": {"n": n, "pad": "x" * 80}})
                n += 1
                time.sleep(0.05)

        threading.Thread(target=act, daemon=True).start()
        time.sleep(2)
        cpu = measure(a.pid, a.seconds)
        stop.set()
        for p in players:
            p.send({"proto": "room_leave"})
        time.sleep(1)
        return players, spectators, cpu

    _, _, alone = game(f"fanA{tag}", 0)
    print(f"4 players, no spectators: sync server CPU {alone:.1f} % of a core", flush=True)
    players, spectators, cpu = game(f"fanB{tag}", a.spectators)
    print(f"4 players, {a.spectators} spectators: sync server CPU {cpu:.1f} % of a core "
          f"(+{(cpu - alone) / a.spectators * 10:.3f} ms per spectator-second)", flush=True)
    want = players[0].keep
    bad = [s.uid for s in spectators if s.keep != want]
    print(f"frames per stream: {len(want)}; spectators with a different stream: {len(bad)} {bad[:5]}", flush=True)
    sys.exit(1 if bad or not want else 0)


main()

#!/usr/bin/env python3
"""Issue 14 point 2: encrypted players who spam whole-history reloads and drain everything the server sends.

    scripts/reload_spam_probe.py --account http://127.0.0.1:2026 --sync 127.0.0.1:2025 --pid PID
        [--attackers 4] [--history-mb 7] [--rate 48] [--seconds 40] [--ready FILE]

The attackers play one encrypted game and send ~2 KB actions until the game's history holds `--history-mb` MB of
frames (opening every frame meanwhile). Then each sends a sealed `sync_request_reload_frames {start_frame: 0}` at
`--rate` per second for `--seconds`, and reads and discards every byte as fast as the socket gives it (no opening,
so the attackers cost the server as much sealing as it is willing to do). `--ready FILE` is touched when the attack
starts, for a witness game to begin measuring. Printed: the sync server's CPU and the bytes it sent the attackers.
"""
import argparse, base64, json, os, socket, struct, sys, threading, time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reload_flood_probe import post  # noqa: E402


def cpu_secs(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def key(session_key, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(session_key)


def nonce(counter):
    return b"\x00\x00\x00\x00" + struct.pack(">Q", counter)


class Player:
    def __init__(self, args, name):
        post(args.account + "/v1/register", {"username": name, "password": "correct horse"})
        login = post(args.account + "/v1/login", {"username": name, "password": "correct horse"})
        self.uid, self.token = login["uid"], login["token"]
        self.session_key = base64.b64decode(login["session_key"])
        host, port = args.sync.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.buf = b""
        self.opening, self.started = True, False
        self.frame, self.history_bytes, self.drained = -1, 0, 0
        self.keep = None  # frame number -> bytes, when asked to keep them
        self.errors = {}

    def read_frame(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk
        n = struct.unpack(">I", self.buf[:4])[0]
        frame, self.buf = self.buf[: 4 + n], self.buf[4 + n :]
        return frame

    def enter(self, room, proto="room_enter"):
        body = {"uid": self.uid, "token": self.token, "extra_data": {"proto": proto, "data": {"room_id": room}}}
        raw = json.dumps(body).encode()
        self.sock.sendall(struct.pack(">I", len(raw)) + raw)
        hello = json.loads(self.read_frame()[4:])
        salt = base64.b64decode(hello["data"]["salt"])
        self.tx = ChaCha20Poly1305(key(self.session_key, salt, b"movan/v1/client-to-server"))
        self.rx = ChaCha20Poly1305(key(self.session_key, salt, b"movan/v1/server-to-client"))
        self.tx_n = self.rx_n = 0
        self.send({"proto": "ping"})
        threading.Thread(target=self.read, daemon=True).start()

    def send(self, extra):
        raw = json.dumps({"uid": self.uid, "extra_data": extra}).encode()
        with self.lock:
            prefix = struct.pack(">I", len(raw) + 16)
            self.sock.sendall(prefix + self.tx.encrypt(nonce(self.tx_n), raw, prefix))
            self.tx_n += 1

    def read(self):
        try:
            while self.opening:
                frame = self.read_frame()
                body = self.rx.decrypt(nonce(self.rx_n), frame[4:], frame[:4])
                self.rx_n += 1
                msg = json.loads(body)
                proto = msg.get("proto")
                if proto == "game_start":
                    self.started = True
                elif proto == "error":
                    code = msg.get("data", {}).get("code")
                    if code not in self.errors:
                        print("  error:", msg, flush=True)
                    self.errors[code] = self.errors.get(code, 0) + 1
                elif proto == "sync_frame":
                    self.frame = msg["data"]["frame_count"]
                    self.history_bytes += len(body)
                    if self.keep is not None:
                        self.keep[self.frame] = body[len(b'{"proto":"sync_frame","data":') : -1]
            self.drained += len(self.buf)
            sink = bytearray(1 << 20)
            while True:
                n = self.sock.recv_into(sink)
                if n == 0:
                    return
                self.drained += n
        except (OSError, EOFError):
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", required=True)
    ap.add_argument("--sync", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--attackers", type=int, default=4)
    ap.add_argument("--history-mb", type=float, default=7.0)
    ap.add_argument("--rate", type=int, default=48)
    ap.add_argument("--seconds", type=int, default=40)
    ap.add_argument("--ready")
    a = ap.parse_args()
    tag = str(int(time.time()))
    players = [Player(a, f"spam{tag}x{i}") for i in range(a.attackers)]
    for p in players:
        p.enter("spam" + tag)
    time.sleep(0.3)
    for p in players:
        p.send({"proto": "room_prepare"})
    while not all(p.started for p in players):
        time.sleep(0.05)
    payload = "x" * 2000
    target = a.history_mb * 1e6
    t0 = time.time()
    last = t0
    while players[0].history_bytes < target:
        if time.time() - last >= 5:
            last = time.time()
            print(f"  frame {players[0].frame}, history {players[0].history_bytes / 1e6:.1f} MB, errors {players[0].errors}", flush=True)
        for p in players:
            p.send({"proto": "sync_action", "timestamp": time.time(), "action_data": {"pad": payload}})
        time.sleep(0.05)
    frames = players[0].frame
    for p in players:
        p.opening = False
    print(f"history: {frames} frames, {players[0].history_bytes / 1e6:.1f} MB, built in {time.time() - t0:.0f} s", flush=True)
    if a.ready:
        open(a.ready, "w").close()
    cpu0, start, sent, tick = cpu_secs(a.pid), time.time(), 0, 0
    drained0 = sum(p.drained for p in players)
    while time.time() - start < a.seconds:
        for p in players:
            try:
                p.send({"proto": "sync_request_reload_frames", "data": {"start_frame": 0}})
                sent += 1
            except OSError:
                pass
        tick += 1
        time.sleep(max(0.0, start + tick / a.rate - time.time()))
    wall = time.time() - start
    cpu = (cpu_secs(a.pid) - cpu0) / wall * 100
    drained = (sum(p.drained for p in players) - drained0) / wall / 1e6
    print(f"attack: {sent} reload requests in {wall:.0f} s; sync server CPU {cpu:.0f} %; "
          f"attackers received {drained:.1f} MB/s", flush=True)
    for p in players:
        p.sock.close()


if __name__ == "__main__":
    main()

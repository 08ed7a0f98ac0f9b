#!/usr/bin/env python3
"""Issue 14 point 1: players who ask for whole-history reloads and never read. Prints the sync server's RSS.

    scripts/reload_flood_probe.py --account http://127.0.0.1:2026 --sync 127.0.0.1:2025 --pid PID
        [--attackers 4] [--frames 8000] [--rate 90] [--seconds 10]

Run the sync server with `encryption = "off"` (the memory effect does not depend on sealing) and a short
`tick_interval_ms` (e.g. 5) so that a long history builds up quickly. The attackers play one game until it has
`--frames` frames (reading all the while), then stop reading and send `sync_request_reload_frames {start_frame: 0}`
at `--rate` per second each for `--seconds`, then close. RSS is printed each second, and 5 s after they are gone.
"""
import argparse, json, socket, struct, threading, time, urllib.request

def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

def send(sock, msg):
    body = json.dumps(msg).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)

class Player:
    def __init__(self, args, name):
        post(args.account + "/v1/register", {"username": name, "password": "correct horse"})
        tokens = post(args.account + "/v1/login", {"username": name, "password": "correct horse"})
        self.uid, self.token = tokens["uid"], tokens["token"]
        host, port = args.sync.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.reading, self.frame = True, -1
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        buf = b""
        while self.reading:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                n = struct.unpack(">I", buf[:4])[0]
                msg, buf = json.loads(buf[4:4 + n]), buf[4 + n:]
                if msg.get("proto") == "sync_frame":
                    self.frame = msg["data"]["frame_count"]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", required=True)
    ap.add_argument("--sync", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--attackers", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8000)
    ap.add_argument("--rate", type=int, default=90)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    tag = str(int(time.time()))
    players = [Player(a, f"flood{tag}x{i}") for i in range(a.attackers)]
    for p in players:
        send(p.sock, {"uid": p.uid, "token": p.token, "extra_data": {"proto": "room_enter", "data": {"room_id": "flood" + tag}}})
    time.sleep(0.5)
    for p in players:
        send(p.sock, {"uid": p.uid, "extra_data": {"proto": "room_prepare"}})
    print(f"baseline RSS {rss_mib(a.pid):.0f} MiB", flush=True)
    while min(p.frame for p in players) < a.frames:
        time.sleep(0.2)
    for p in players:
        p.reading = False
    print(f"history of {a.frames} frames; RSS {rss_mib(a.pid):.0f} MiB; attack starts", flush=True)
    sent = refused = 0
    start = time.time()
    tick = 0
    while time.time() - start < a.seconds:
        for p in players:
            try:
                send(p.sock, {"uid": p.uid, "extra_data": {"proto": "sync_request_reload_frames", "data": {"start_frame": 0}}})
                sent += 1
            except OSError:
                refused += 1
        tick += 1
        if tick % a.rate == 0:
            print(f"t={time.time() - start:4.1f}s RSS {rss_mib(a.pid):.0f} MiB (reload requests sent {sent}, failed sends {refused})", flush=True)
        time.sleep(max(0.0, start + tick / a.rate - time.time()))
    print(f"attack over: RSS {rss_mib(a.pid):.0f} MiB", flush=True)
    for p in players:
        p.sock.close()
    time.sleep(5)
    print(f"5 s after the attackers left: RSS {rss_mib(a.pid):.0f} MiB", flush=True)

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A Movan UDP client built on the reference KCP (skywind3000's ikcp.c, through PyPI's `kcp` bindings), written
from docs/protocol.md alone: it shares no code with the Rust client.

It logs in, opens a UDP session (hello, cookie, connect, accept), plays one game sealed with ChaCha20-Poly1305
(`cryptography`), sends ACTIONS actions and prints one JSON line: the frames it saw and its actions found in them.
tests/udp.rs runs it next to a Rust player. Usage:
    kcp_client.py ACCOUNT_URL USERNAME ROOM ACTIONS
"""

import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from kcp import KCP

PASSWORD = "kcp-interop-password"


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return {"status": e.code}


def login(account, username):
    post(account + "/v1/register", {"username": username, "password": PASSWORD})
    s = post(account + "/v1/login", {"username": username, "password": PASSWORD})
    assert "token" in s, s
    return s


def control(kind, nonce, rest=b"", pad=False):
    """Control datagram: conv 0 (4 zero bytes), kind, version 1, the client's 8-byte nonce, then the rest."""
    d = b"\x00\x00\x00\x00" + bytes([kind, 1]) + nonce + rest
    return d.ljust(64, b"\x00") if pad else d


def open_session(sock):
    """hello -> cookie -> connect -> accept; returns the server-chosen conv."""
    nonce = os.urandom(8)
    sock.settimeout(0.25)
    request = control(1, nonce, pad=True)
    for _ in range(40):
        sock.send(request)
        try:
            d = sock.recv(2048)
        except socket.timeout:
            continue
        if d[:4] != b"\x00\x00\x00\x00" or d[6:14] != nonce:
            continue
        if d[4] == 2:  # cookie: slot (4) and mac (16), echoed in connect
            request = control(3, nonce, d[14:34], pad=True)
        elif d[4] == 4:  # accept: conv, big-endian
            return struct.unpack(">I", d[14:18])[0]
        elif d[4] == 5:
            raise SystemExit(f"refused, code {d[14]}")
    raise SystemExit("no answer to the UDP set-up")


class Sealed:
    """ChaCha20-Poly1305 per direction; nonce = 4 zero bytes + 64-bit BE counter; AAD = body length, 4 bytes BE."""

    def __init__(self, session_key, salt, info):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(session_key)
        self.aead = ChaCha20Poly1305(key)
        self.counter = 0

    def _nonce(self):
        n = b"\x00\x00\x00\x00" + struct.pack(">Q", self.counter)
        self.counter += 1
        return n

    def seal(self, plaintext):
        return self.aead.encrypt(self._nonce(), plaintext, struct.pack(">I", len(plaintext) + 16))

    def open(self, body):
        return self.aead.decrypt(self._nonce(), body, struct.pack(">I", len(body)))


def main():
    account, username, room, actions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = login(account, username)
    host, port = s["sync_udp_addr"].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, int(port)))
    conv = open_session(sock)

    # The server's KCP tuning (docs/protocol.md, UDP): nodelay, 10 ms interval, fast resend 2, no congestion window.
    kcp = KCP(conv, max_transmission=1400, no_delay=True, update_interval=10, resend_count=2,
              no_congestion_control=True, send_window_size=256, receive_window_size=256)
    kcp.include_outbound_handler(lambda _k, data: sock.send(data))
    inbox = []
    sock.setblocking(False)

    def pump(seconds):
        end = time.monotonic() + seconds
        while True:
            kcp.update()
            try:
                while True:
                    kcp.receive(sock.recv(65536))
            except BlockingIOError:
                pass
            inbox.extend(bytes(m) for m in kcp.get_all_received())
            kcp.flush()
            if time.monotonic() >= end:
                return
            time.sleep(0.005)

    sealer = opener = None

    def send(message):
        body = json.dumps(message, separators=(",", ":")).encode()
        kcp.enqueue(sealer.seal(body) if sealer else body)
        kcp.flush()

    def message(extra):
        extra.setdefault("timestamp", time.time())
        return {"uid": s["uid"], "extra_data": extra}

    def next_message(timeout=20):
        end = time.monotonic() + timeout
        while not inbox:
            if time.monotonic() > end:
                raise SystemExit("timed out waiting for the server")
            pump(0.01)
        body = inbox.pop(0)
        return json.loads(opener.open(body) if opener else body)

    first = message({"proto": "ping"})
    first["token"] = s["token"]
    send(first)
    hs = next_message()
    assert hs["proto"] == "handshake", hs
    salt = base64.b64decode(hs["data"]["salt"])
    key = base64.b64decode(s["session_key"])
    sealer = Sealed(key, salt, b"movan/v1/client-to-server")
    opener = Sealed(key, salt, b"movan/v1/server-to-client")
    send(message({"proto": "ping"}))
    send(message({"proto": "room_enter", "data": {"room_id": room}}))
    send(message({"proto": "room_prepare"}))
    frames, mine, sent, last = 0, [], 0, None
    started = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = next_message()
        if m["proto"] == "game_start":
            started = True
        if m["proto"] == "sync_frame":
            f = m["data"]
            assert last is None or f["frame_count"] == last + 1, (last, f["frame_count"])
            last = f["frame_count"]
            frames += 1
            mine += [a["extra_data"]["action_data"]["n"] for a in f["actions"] if a["uid"] == s["uid"]]
            if started and sent < actions:
                send(message({"proto": "sync_action", "action_data": {"n": sent}}))
                sent += 1
            if sent == actions and len(mine) == actions:
                break
        if m["proto"] == "error":
            raise SystemExit(f"server error: {m}")
    send(message({"proto": "room_leave"}))
    pump(0.3)
    print(json.dumps({"uid": s["uid"], "conv": conv, "frames": frames, "sent": sent, "mine": mine}))


if __name__ == "__main__":
    main()

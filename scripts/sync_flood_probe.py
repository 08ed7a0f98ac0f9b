#!/usr/bin/env python3
"""Issue 14 point 5: a flood of TCP connections that never authenticate, against a running sync server.

Opens --conns silent connections from --networks loopback networks (127.0.N.2, one address per /24, so that the
per-address and per-network limits do not stop them), reopening each one the server closes (an attacker who
reconnects). Every second it prints how many the flood holds, what a fresh connection from another address (a
player's) gets (served, refused, or stalled in the listen backlog), and the server's RSS; then it closes everything and
prints the RSS 5 s later.

    scripts/sync_flood_probe.py --sync 127.0.0.1:3502 --pid PID [--conns 3500] [--networks 40] [--seconds 15]

Standard library only. Driven by scripts/sync_flood.sh.
"""
import argparse
import errno
import resource
import selectors
import socket
import subprocess
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_side(port):
    """Established connections on the server's port, as the kernel counts them (`ss`); -1 without `ss`."""
    try:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=5).stdout
        return len(out.splitlines())
    except (OSError, subprocess.SubprocessError):
        return -1


def open_conn(addr, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((source, 0))
    s.setblocking(False)
    try:
        s.connect(addr)
    except BlockingIOError:
        pass
    except OSError as e:
        if e.errno != errno.EINPROGRESS:
            s.close()
            return None
    return s


def player_probe(addr, source, wait=1.0):
    """What a player's fresh connection gets: its first message (no token) is answered with `unauthenticated`
    ("served", with the time it took), or it is refused or shed with `too_many_connections` ("refused"), or nothing
    comes within `wait` ("stalled": the server never read it, e.g. it waits in the listen backlog)."""
    body = b'{"uid":"1","extra_data":{"proto":"ping"}}'
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(wait)
    t0 = time.monotonic()
    try:
        s.connect(addr)
        s.sendall(len(body).to_bytes(4, "big") + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        ms = (time.monotonic() - t0) * 1000
        if b"too_many_connections" in data:
            return "refused", ms
        if b"unauthenticated" in data:
            return "served", ms
        return "closed", ms
    except socket.timeout:
        return "stalled", wait * 1000
    except OSError as e:
        return f"error:{e.errno}", 0.0
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sync", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=3500)
    ap.add_argument("--networks", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = a.sync.rsplit(":", 1)
    addr = (host, int(port))
    sources = [f"127.0.{n + 1}.2" for n in range(a.networks)]
    sel = selectors.DefaultSelector()
    base = rss_kib(a.pid)
    print(f"baseline: rss {base / 1024:.1f} MiB")
    held = {}
    opened = closed = 0
    next_source = 0

    def refill():
        nonlocal opened, next_source
        while len(held) < a.conns:
            s = open_conn(addr, sources[next_source % len(sources)])
            next_source += 1
            if s is None:
                return
            held[s.fileno()] = s
            sel.register(s, selectors.EVENT_READ)
            opened += 1

    start = time.monotonic()
    peak = base
    most = 0
    refused = 0
    probes = 0
    next_report = start + 1
    while time.monotonic() - start < a.seconds:
        refill()
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                s.recv(4096)
            except OSError:
                pass
            # Readable means an error frame (the server speaks first only to refuse, shed or time out) or the
            # close: either way the server is done with it, and the flood opens another.
            if True:
                sel.unregister(s)
                held.pop(s.fileno(), None)
                s.close()
                closed += 1
        now = time.monotonic()
        if now >= next_report:
            next_report += 1
            verdict, ms = player_probe(addr, "127.0.200.9")
            probes += 1
            refused += verdict != "served"
            rss = rss_kib(a.pid)
            peak = max(peak, rss)
            established = server_side(addr[1])
            most = max(most, established)
            print(f"t={now - start:4.1f}s server holds {established:5d} (flood sockets {len(held):5d}) opened {opened:6d} closed by server {closed:6d} "
                  f"player: {verdict:8s} {ms:6.1f} ms  rss {rss / 1024:.1f} MiB", flush=True)
    for s in list(held.values()):
        sel.unregister(s)
        s.close()
    held.clear()
    later = []
    for _ in range(4):
        time.sleep(5)
        later.append(rss_kib(a.pid))
    after = later[0]
    print(f"summary: the server held at most {most} connections; player not served in {refused}/{probes} probes; rss baseline {base / 1024:.1f} MiB, "
          f"peak {peak / 1024:.1f} MiB, 5 s after the flood {after / 1024:.1f} MiB "
          f"({(after - base) / max(opened, 1):.2f} KiB per connection opened left over); 10/15/20 s after: "
          + " / ".join(f"{r / 1024:.1f}" for r in later[1:]) + " MiB")


if __name__ == "__main__":
    main()

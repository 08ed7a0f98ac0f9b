#!/usr/bin/env python3
"""Holds hostile connections against an account server and reports how many it still keeps open.

    scripts/account_conn_probe.py HOST:PORT [--slowloris 1000] [--idle 1000] [--bodies 100] [--seconds 45]

- slowloris: sends a request head one byte every 5 s;
- idle: connects and sends nothing;
- bodies: sends a head declaring a 1 GB body, then nothing.
Every 5 s it prints how many of each are still open, and how long a fresh GET /healthz takes.
"""
import argparse, resource, selectors, socket, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--slowloris", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--bodies", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=45)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = a.addr.rsplit(":", 1)
    target = (host, int(port))
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 64 + b"\r\n\r\n"
    body = b"POST /v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n{"
    groups = {"slowloris": [], "idle": [], "bodies": []}
    for kind, n in (("slowloris", a.slowloris), ("idle", a.idle), ("bodies", a.bodies)):
        for _ in range(n):
            s = socket.create_connection(target)
            s.setblocking(False)
            if kind == "bodies":
                s.send(body)
            groups[kind].append([s, 0])
    start = time.time()
    next_byte = start
    next_report = start
    while True:
        now = time.time()
        if now >= next_byte:
            for entry in groups["slowloris"]:
                s, sent = entry
                if s is not None and sent < len(head) - 1:
                    try:
                        s.send(head[sent:sent + 1])
                        entry[1] += 1
                    except OSError:
                        entry[0] = None
            next_byte += 5
        if now >= next_report:
            counts = {k: sum(1 for e in v if e[0] is not None and alive(e)) for k, v in groups.items()}
            t0 = time.time()
            try:
                probe = socket.create_connection(target, timeout=5)
                probe.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                status = probe.recv(12).decode(errors="replace")
                probe.close()
            except OSError as e:
                status = f"failed: {e}"
            print(f"t={now - start:5.1f}s open: slowloris {counts['slowloris']}/{a.slowloris} idle {counts['idle']}/{a.idle} "
                  f"bodies {counts['bodies']}/{a.bodies}; healthz {status!r} in {1000 * (time.time() - t0):.0f} ms", flush=True)
            next_report += 5
            if now - start >= a.seconds:
                break
        time.sleep(0.05)

def alive(entry):
    s = entry[0]
    try:
        data = s.recv(65536)
        if data == b"":
            entry[0] = None
            return False
        return True
    except BlockingIOError:
        return True
    except OSError:
        entry[0] = None
        return False

main()

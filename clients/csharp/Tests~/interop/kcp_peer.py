#!/usr/bin/env python3
"""The reference KCP (skywind3000's ikcp.c, through PyPI's `kcp` 0.1.6) as a peer for KcpInteropTests, on the
test's fake time. It echoes every message it receives.

Line protocol, one command per stdin line, answered on stdout:
    in MS HEX    a datagram at time MS: ikcp_update(MS), ikcp_input, then every whole message received is printed
                 ("msg HEX") and sent back (ikcp_send), and ikcp_flush
    tick MS      ikcp_update(MS)
Every answer lists the datagrams ikcp.c output ("out HEX") and ends with "end".
Usage: kcp_peer.py CONV  (the server's tuning: MTU 1400, nodelay, 10 ms, fast resend 2, no cwnd, windows 256)
"""
import sys

from kcp import KCP


def main():
    conv = int(sys.argv[1])
    out = []
    k = KCP(conv, max_transmission=1400, no_delay=True, update_interval=10, resend_count=2,
            no_congestion_control=True, send_window_size=256, receive_window_size=256)
    k.include_outbound_handler(lambda _k, data: out.append(bytes(data)))
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "in":
            k.update(int(parts[1]))
            k.receive(bytes.fromhex(parts[2]))
            for m in k.get_all_received():
                m = bytes(m)
                sys.stdout.write("msg " + (m.hex() or "-") + "\n")
                k.enqueue(m)
            k.flush()
        elif parts[0] == "tick":
            k.update(int(parts[1]))
        for d in out:
            sys.stdout.write("out " + d.hex() + "\n")
        out.clear()
        sys.stdout.write("end\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

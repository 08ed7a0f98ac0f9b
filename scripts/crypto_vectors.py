#!/usr/bin/env python3
"""Test vectors for Movan encrypted sessions, computed independently of the Rust code.

The scheme is specified in docs/encryption.md and implemented in movan-protocol/src/crypto.rs; the hex printed here is
hard-coded in that file's tests, so the two implementations agree byte for byte. Client authors in other languages can
run this script (or port it) to check their own implementation. It also prints the sealed versions of the worked byte
examples of docs/protocol.md §2, with the same keys (clients/js/test/protocol.test.js checks them).

Requires the `cryptography` package (pip install cryptography). Usage: python3 scripts/crypto_vectors.py
"""

import base64
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = {
    "client_to_server": b"movan/v1/client-to-server",
    "server_to_client": b"movan/v1/server-to-client",
}

SESSION_KEY = bytes(range(0x00, 0x20))
SALT = bytes(range(0x20, 0x40))

# (direction, counter, plaintext): counters are per direction and start at 0.
FRAMES = [
    ("client_to_server", 0, b'{"proto":"ping"}'),
    ("client_to_server", 1, b'{"proto":"sync_action"}'),
    ("server_to_client", 0, b'{"proto":"sync_frame","data":{"frame_count":0,"actions":[]}}'),
]

# docs/protocol.md §2's worked examples, sealed with the same keys: (direction, counter, plaintext).
PROTOCOL_EXAMPLES = [
    ("client_to_server", 0, b'{"uid":"1001","extra_data":{"proto":"ping"}}'),
    ("server_to_client", 0, b'{"proto":"sync_frame","data":{"frame_count":1,"actions":[]}}'),
]


def derive_key(session_key: bytes, salt: bytes, direction: str) -> bytes:
    """HKDF-SHA256(ikm=session key, salt=connection salt, info=direction label) -> 32 bytes."""
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO[direction]).derive(session_key)
    # The same derivation from RFC 5869 with only the standard library, as a second independent check.
    prk = hmac.new(salt, session_key, hashlib.sha256).digest()
    t1 = hmac.new(prk, INFO[direction] + b"\x01", hashlib.sha256).digest()
    assert okm == t1, "cryptography's HKDF and the stdlib HKDF disagree"
    return okm


def nonce(counter: int) -> bytes:
    """4 zero bytes, then the 64-bit big-endian frame counter."""
    return b"\x00\x00\x00\x00" + struct.pack(">Q", counter)


def seal(key: bytes, counter: int, plaintext: bytes) -> bytes:
    """A whole wire frame: u32 BE length (plaintext + 16), ciphertext, 16-byte tag. The AAD is the length prefix."""
    prefix = struct.pack(">I", len(plaintext) + 16)
    return prefix + ChaCha20Poly1305(key).encrypt(nonce(counter), plaintext, prefix)


def handshake_frame(salt: bytes) -> bytes:
    body = json.dumps(
        {"proto": "handshake", "data": {"salt": base64.b64encode(salt).decode(), "cipher": "chacha20poly1305"}},
        separators=(",", ":"),
    ).encode()
    return struct.pack(">I", len(body)) + body


def main() -> None:
    keys = {d: derive_key(SESSION_KEY, SALT, d) for d in INFO}
    print(f"session_key          {SESSION_KEY.hex()}")
    print(f"session_key (base64) {base64.b64encode(SESSION_KEY).decode()}")
    print(f"salt                 {SALT.hex()}")
    print(f"salt (base64)        {base64.b64encode(SALT).decode()}")
    for d, k in keys.items():
        print(f"key {d:<16} {k.hex()}")
    hs = handshake_frame(SALT)
    print(f"handshake frame      {hs.hex()}")
    print(f"handshake body       {hs[4:].decode()}")
    for direction, counter, plaintext in FRAMES:
        wire = seal(keys[direction], counter, plaintext)
        # Opening it back checks the frame, and that the AAD is exactly the prefix.
        assert ChaCha20Poly1305(keys[direction]).decrypt(nonce(counter), wire[4:], wire[:4]) == plaintext
        print()
        print(f"frame {direction} counter {counter}")
        print(f"  nonce     {nonce(counter).hex()}")
        print(f"  plaintext {plaintext.decode()}")
        print(f"  plaintext {plaintext.hex()}")
        print(f"  aad       {wire[:4].hex()}")
        print(f"  wire      {wire.hex()}")
    for direction, counter, plaintext in PROTOCOL_EXAMPLES:
        wire = seal(keys[direction], counter, plaintext)
        assert ChaCha20Poly1305(keys[direction]).decrypt(nonce(counter), wire[4:], wire[:4]) == plaintext
        print()
        print(f"protocol.md §2, sealed: {direction} counter {counter}, {len(plaintext)}-byte plaintext")
        print(f"  plaintext {plaintext.decode()}")
        print(f"  wire      ({len(wire) - 4}-byte body)")
        for i in range(0, len(wire), 16):
            print("   ", " ".join(f"{b:02x}" for b in wire[i : i + 16]))


if __name__ == "__main__":
    main()

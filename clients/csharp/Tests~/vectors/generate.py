#!/usr/bin/env python3
"""Writes aead_random.txt: ChaCha20-Poly1305 vectors from an independent implementation (Python's `cryptography`,
i.e. OpenSSL), covering every length class (empty, partial and whole 16- and 64-byte blocks, long inputs).

Run: pip install cryptography && python3 generate.py > aead_random.txt
Each line: key nonce aad plaintext ciphertext||tag (hex, "-" for empty).
"""
import random

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

rng = random.Random(8439)
lengths = list(range(0, 70)) + [127, 128, 129, 255, 256, 257, 1000, 4096]
print("# ChaCha20-Poly1305 vectors from Python cryptography (OpenSSL); see generate.py")
for i, n in enumerate(lengths):
    key = bytes(rng.getrandbits(8) for _ in range(32))
    nonce = bytes(rng.getrandbits(8) for _ in range(12))
    aad = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 4, 12, 15, 16, 17, 40])))
    pt = bytes(rng.getrandbits(8) for _ in range(n))
    ct = ChaCha20Poly1305(key).encrypt(nonce, pt, aad)
    print(" ".join(x.hex() or "-" for x in (key, nonce, aad, pt, ct)))

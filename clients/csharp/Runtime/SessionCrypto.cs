using System;
using System.Security.Cryptography;
using System.Text;

namespace Movan.Client
{
    /// <summary>HKDF with HMAC-SHA256 (RFC 5869), built on the base library's <see cref="HMACSHA256"/>.</summary>
    public static class Hkdf
    {
        /// <summary>Extract-then-expand: <paramref name="length"/> (at most 8160) bytes of output keying material.</summary>
        public static byte[] DeriveKey(byte[] ikm, byte[] salt, byte[] info, int length)
        {
            if (ikm == null) throw new ArgumentNullException("ikm");
            if (length < 0 || length > 255 * 32) throw new ArgumentOutOfRangeException("length");
            byte[] prk;
            // An absent salt is HashLen zero bytes (RFC 5869 §2.2).
            using (var extract = new HMACSHA256(salt == null || salt.Length == 0 ? new byte[32] : salt))
            {
                prk = extract.ComputeHash(ikm);
            }
            var okm = new byte[length];
            info = info ?? new byte[0];
            using (var expand = new HMACSHA256(prk))
            {
                var t = new byte[0];
                int done = 0;
                for (byte i = 1; done < length; i++)
                {
                    var input = new byte[t.Length + info.Length + 1];
                    Buffer.BlockCopy(t, 0, input, 0, t.Length);
                    Buffer.BlockCopy(info, 0, input, t.Length, info.Length);
                    input[input.Length - 1] = i;
                    t = expand.ComputeHash(input);
                    int n = Math.Min(t.Length, length - done);
                    Buffer.BlockCopy(t, 0, okm, done, n);
                    done += n;
                }
            }
            Array.Clear(prk, 0, prk.Length);
            return okm;
        }
    }

    /// <summary>
    /// The session encryption of docs/encryption.md: per-direction keys from HKDF-SHA256, ChaCha20-Poly1305 with a
    /// counter nonce, and the 4-byte big-endian length of the sealed body as associated data.
    /// </summary>
    public static class SessionCrypto
    {
        /// <summary>The cipher name in the server's handshake.</summary>
        public const string Cipher = "chacha20poly1305";
        /// <summary>Bytes of a session key and of a connection salt.</summary>
        public const int KeySize = 32;
        /// <summary>Bytes of the tag at the end of every sealed body.</summary>
        public const int TagSize = ManagedChaCha20Poly1305.TagSize;

        /// <summary>HKDF <c>info</c> of the client → server key.</summary>
        public static readonly byte[] InfoClientToServer = Encoding.ASCII.GetBytes("movan/v1/client-to-server");
        /// <summary>HKDF <c>info</c> of the server → client key.</summary>
        public static readonly byte[] InfoServerToClient = Encoding.ASCII.GetBytes("movan/v1/server-to-client");

        /// <summary>Decodes a session key or salt: standard base64 of exactly 32 bytes.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Crypto"/>: not base64, or not 32 bytes.</exception>
        public static byte[] DecodeKey(string base64, string what)
        {
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(base64 ?? "");
            }
            catch (FormatException)
            {
                throw new MovanException(ErrorKind.Crypto, "bad " + what + ": not standard base64");
            }
            if (bytes.Length != KeySize)
            {
                throw new MovanException(ErrorKind.Crypto, "bad " + what + ": " + bytes.Length + " bytes, expected 32");
            }
            return bytes;
        }

        /// <summary>The two direction keys of one connection (docs/encryption.md §3).</summary>
        public static void DeriveKeys(byte[] sessionKey, byte[] salt, out byte[] clientToServer,
            out byte[] serverToClient)
        {
            if (sessionKey == null || sessionKey.Length != KeySize) throw new ArgumentException("session key must be 32 bytes");
            if (salt == null || salt.Length != KeySize) throw new ArgumentException("salt must be 32 bytes");
            clientToServer = Hkdf.DeriveKey(sessionKey, salt, InfoClientToServer, 32);
            serverToClient = Hkdf.DeriveKey(sessionKey, salt, InfoServerToClient, 32);
        }

        /// <summary>The client's sealer (client → server) and opener (server → client) for a connection salt.</summary>
        public static void ClientSide(byte[] sessionKey, byte[] salt, IAead aead, out FrameSealer sealer,
            out FrameOpener opener)
        {
            byte[] c2s, s2c;
            DeriveKeys(sessionKey, salt, out c2s, out s2c);
            aead = aead ?? new ManagedChaCha20Poly1305();
            sealer = new FrameSealer(aead, c2s);
            opener = new FrameOpener(aead, s2c);
        }

        /// <summary>The 12-byte nonce of a counter: four zero bytes, then the counter as big-endian u64.</summary>
        public static byte[] Nonce(ulong counter)
        {
            var n = new byte[12];
            WriteNonce(n, counter);
            return n;
        }

        internal static void WriteNonce(byte[] n, ulong counter)
        {
            n[0] = n[1] = n[2] = n[3] = 0;
            for (int i = 0; i < 8; i++) n[4 + i] = (byte)(counter >> (56 - 8 * i));
        }

        internal static void WriteLengthPrefix(byte[] prefix, int length)
        {
            prefix[0] = (byte)(length >> 24);
            prefix[1] = (byte)(length >> 16);
            prefix[2] = (byte)(length >> 8);
            prefix[3] = (byte)length;
        }
    }

    /// <summary>Seals one direction's frames with consecutive counters from 0. Not thread-safe: one writer at a time.</summary>
    public sealed class FrameSealer
    {
        private readonly IAead aead;
        private readonly byte[] key;
        private readonly byte[] nonce = new byte[12];
        private readonly byte[] aad = new byte[4];

        /// <summary>A sealer under a derived direction key.</summary>
        public FrameSealer(IAead aead, byte[] key)
        {
            this.aead = aead;
            this.key = key;
        }

        /// <summary>The counter the next sealed frame uses.</summary>
        public ulong Counter { get; private set; }

        /// <summary>Seals a plaintext body into <c>ciphertext || tag</c>: the body of a sealed frame (without the TCP prefix).</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Crypto"/> when the counter is exhausted (2^64 − 1 is never used).</exception>
        public byte[] SealBody(byte[] plaintext, int offset, int count)
        {
            if (Counter == ulong.MaxValue)
            {
                throw new MovanException(ErrorKind.Crypto, "the client->server frame counter is exhausted");
            }
            int len = count + SessionCrypto.TagSize;
            var body = new byte[len];
            SessionCrypto.WriteNonce(nonce, Counter);
            SessionCrypto.WriteLengthPrefix(aad, len);
            aead.Seal(key, nonce, aad, plaintext, offset, count, body, 0);
            Counter++;
            return body;
        }
    }

    /// <summary>Opens one direction's frames, expecting consecutive counters from 0. Not thread-safe: one reader at a time.</summary>
    public sealed class FrameOpener
    {
        private readonly IAead aead;
        private readonly byte[] key;
        private readonly byte[] nonce = new byte[12];
        private readonly byte[] aad = new byte[4];

        /// <summary>An opener under a derived direction key.</summary>
        public FrameOpener(IAead aead, byte[] key)
        {
            this.aead = aead;
            this.key = key;
        }

        /// <summary>The counter the next frame must have been sealed with.</summary>
        public ulong Counter { get; private set; }

        /// <summary>Opens a sealed body (<c>ciphertext || tag</c>); the counter advances only on success.</summary>
        /// <exception cref="MovanException"><see cref="ErrorKind.Crypto"/>: shorter than a tag, a tag mismatch
        /// (tampered, replayed, reordered, other key), or the counter is exhausted.</exception>
        public byte[] OpenBody(byte[] body, int offset, int count)
        {
            if (count < SessionCrypto.TagSize)
            {
                throw new MovanException(ErrorKind.Crypto,
                    "server frame " + Counter + " has " + count + " bytes, fewer than a tag");
            }
            if (Counter == ulong.MaxValue)
            {
                throw new MovanException(ErrorKind.Crypto, "the server->client frame counter is exhausted");
            }
            var plain = new byte[count - SessionCrypto.TagSize];
            SessionCrypto.WriteNonce(nonce, Counter);
            SessionCrypto.WriteLengthPrefix(aad, count);
            if (!aead.Open(key, nonce, aad, body, offset, count, plain, 0))
            {
                throw new MovanException(ErrorKind.Crypto,
                    "server frame " + Counter + " (" + count + " bytes) did not open: bad tag");
            }
            Counter++;
            return plain;
        }
    }
}

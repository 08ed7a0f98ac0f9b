using System;

namespace Movan.Client
{
    /// <summary>
    /// ChaCha20-Poly1305 AEAD (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag. Plug in your own (libsodium,
    /// BouncyCastle, .NET 6's <c>System.Security.Cryptography.ChaCha20Poly1305</c>) through
    /// <see cref="SyncConnectOptions.Aead"/>; <see cref="ManagedChaCha20Poly1305"/> is the default.
    /// </summary>
    /// <remarks>Implementations must be safe to call from several threads at once (each connection direction calls
    /// it from its own thread).</remarks>
    public interface IAead
    {
        /// <summary>
        /// Encrypts <paramref name="length"/> bytes of <paramref name="input"/> at <paramref name="inputOffset"/> and
        /// writes the ciphertext followed by the 16-byte tag (<c>length + 16</c> bytes) into
        /// <paramref name="output"/> at <paramref name="outputOffset"/>.
        /// </summary>
        void Seal(byte[] key, byte[] nonce, byte[] aad, byte[] input, int inputOffset, int length, byte[] output,
            int outputOffset);

        /// <summary>
        /// Checks the tag of <paramref name="length"/> bytes (ciphertext then 16-byte tag) at
        /// <paramref name="inputOffset"/> and, when it matches, writes the <c>length - 16</c> plaintext bytes into
        /// <paramref name="output"/>. Returns false, writing nothing, when the tag does not match.
        /// </summary>
        bool Open(byte[] key, byte[] nonce, byte[] aad, byte[] input, int inputOffset, int length, byte[] output,
            int outputOffset);
    }

    /// <summary>
    /// A managed ChaCha20-Poly1305 with no dependencies, checked against the RFC 8439 vectors and every vector in
    /// docs/encryption.md. It has no data-dependent branches or table lookups, and compares tags in constant time.
    /// </summary>
    public sealed class ManagedChaCha20Poly1305 : IAead
    {
        /// <summary>Bytes of the Poly1305 tag.</summary>
        public const int TagSize = 16;
        /// <summary>Bytes of the key.</summary>
        public const int KeySize = 32;
        /// <summary>Bytes of the nonce.</summary>
        public const int NonceSize = 12;

        private static readonly byte[] Zeros = new byte[16];

        /// <summary>Per-thread work buffers, so that sealing and opening allocate only their output.</summary>
        private sealed class Scratch
        {
            public readonly uint[] State = new uint[16];
            public readonly uint[] X = new uint[16];
            public readonly byte[] Block = new byte[64];
            public readonly byte[] Tag = new byte[16];
            public readonly byte[] Lengths = new byte[16];
            public readonly Poly1305 Poly = new Poly1305();
        }

        [ThreadStatic] private static Scratch scratchOfThread;

        private static Scratch Work()
        {
            return scratchOfThread ?? (scratchOfThread = new Scratch());
        }

        /// <inheritdoc />
        public void Seal(byte[] key, byte[] nonce, byte[] aad, byte[] input, int inputOffset, int length,
            byte[] output, int outputOffset)
        {
            Check(key, nonce, input, inputOffset, length);
            if (output == null || outputOffset < 0 || outputOffset > output.Length - length - TagSize)
            {
                throw new ArgumentException("output too small for the ciphertext and tag");
            }
            Scratch w = Work();
            Poly1305 poly = NewPoly(w, key, nonce);
            ChaCha20.Xor(w.State, w.X, w.Block, key, nonce, 1, input, inputOffset, length, output, outputOffset);
            Authenticate(w, poly, aad, output, outputOffset, length);
            poly.Finish(output, outputOffset + length);
        }

        /// <inheritdoc />
        public bool Open(byte[] key, byte[] nonce, byte[] aad, byte[] input, int inputOffset, int length,
            byte[] output, int outputOffset)
        {
            if (length < TagSize) return false;
            int ctLen = length - TagSize;
            Check(key, nonce, input, inputOffset, length);
            if (output == null || outputOffset < 0 || outputOffset > output.Length - ctLen)
            {
                throw new ArgumentException("output too small for the plaintext");
            }
            Scratch w = Work();
            Poly1305 poly = NewPoly(w, key, nonce);
            Authenticate(w, poly, aad, input, inputOffset, ctLen);
            poly.Finish(w.Tag, 0);
            if (!FixedTime.AreEqual(w.Tag, 0, input, inputOffset + ctLen, TagSize)) return false;
            ChaCha20.Xor(w.State, w.X, w.Block, key, nonce, 1, input, inputOffset, ctLen, output, outputOffset);
            return true;
        }

        private static void Check(byte[] key, byte[] nonce, byte[] input, int offset, int length)
        {
            if (key == null || key.Length != KeySize) throw new ArgumentException("key must be 32 bytes");
            if (nonce == null || nonce.Length != NonceSize) throw new ArgumentException("nonce must be 12 bytes");
            if (input == null || offset < 0 || length < 0 || offset > input.Length - length)
            {
                throw new ArgumentOutOfRangeException("length");
            }
        }

        private static Poly1305 NewPoly(Scratch w, byte[] key, byte[] nonce)
        {
            ChaCha20.Block(w.State, w.X, key, nonce, 0, w.Block);
            w.Poly.Init(w.Block);
            return w.Poly;
        }

        // RFC 8439 §2.8: aad || pad16 || ciphertext || pad16 || le64(|aad|) || le64(|ciphertext|).
        private static void Authenticate(Scratch w, Poly1305 poly, byte[] aad, byte[] ct, int ctOffset, int ctLen)
        {
            int aadLen = aad == null ? 0 : aad.Length;
            if (aadLen > 0) poly.Update(aad, 0, aadLen);
            poly.Update(Zeros, 0, (16 - aadLen % 16) % 16);
            poly.Update(ct, ctOffset, ctLen);
            poly.Update(Zeros, 0, (16 - ctLen % 16) % 16);
            byte[] lengths = w.Lengths;
            ChaCha20.WriteLe64(lengths, 0, (ulong)aadLen);
            ChaCha20.WriteLe64(lengths, 8, (ulong)ctLen);
            poly.Update(lengths, 0, 16);
        }
    }

    /// <summary>Comparisons whose time does not depend on where the inputs differ.</summary>
    public static class FixedTime
    {
        /// <summary>True when <paramref name="count"/> bytes at each offset are equal; always reads all of them.</summary>
        public static bool AreEqual(byte[] a, int aOffset, byte[] b, int bOffset, int count)
        {
            int diff = 0;
            for (int i = 0; i < count; i++)
            {
                diff |= a[aOffset + i] ^ b[bOffset + i];
            }
            return diff == 0;
        }
    }

    /// <summary>The ChaCha20 stream cipher of RFC 8439 §2.4 (32-bit block counter, 96-bit nonce).</summary>
    public static class ChaCha20
    {
        /// <summary>Writes the 64-byte keystream block <paramref name="counter"/> into <paramref name="output"/>.</summary>
        public static void Block(byte[] key, byte[] nonce, uint counter, byte[] output)
        {
            Block(new uint[16], new uint[16], key, nonce, counter, output);
        }

        internal static void Block(uint[] state, uint[] x, byte[] key, byte[] nonce, uint counter, byte[] output)
        {
            Init(state, key, nonce);
            state[12] = counter;
            Core(state, x);
            for (int i = 0; i < 16; i++) WriteLe32(output, i * 4, x[i]);
        }

        /// <summary>XORs <paramref name="length"/> bytes with the keystream starting at block <paramref name="counter"/>.</summary>
        public static void Xor(byte[] key, byte[] nonce, uint counter, byte[] input, int inputOffset, int length,
            byte[] output, int outputOffset)
        {
            Xor(new uint[16], new uint[16], new byte[64], key, nonce, counter, input, inputOffset, length, output,
                outputOffset);
        }

        internal static void Xor(uint[] state, uint[] x, byte[] ks, byte[] key, byte[] nonce, uint counter,
            byte[] input, int inputOffset, int length, byte[] output, int outputOffset)
        {
            Init(state, key, nonce);
            int done = 0;
            while (done < length)
            {
                state[12] = counter++;
                Core(state, x);
                for (int i = 0; i < 16; i++) WriteLe32(ks, i * 4, x[i]);
                int n = Math.Min(64, length - done);
                for (int i = 0; i < n; i++)
                {
                    output[outputOffset + done + i] = (byte)(input[inputOffset + done + i] ^ ks[i]);
                }
                done += n;
            }
        }

        private static void Init(uint[] s, byte[] key, byte[] nonce)
        {
            s[0] = 0x61707865;
            s[1] = 0x3320646e;
            s[2] = 0x79622d32;
            s[3] = 0x6b206574;
            for (int i = 0; i < 8; i++) s[4 + i] = ReadLe32(key, i * 4);
            s[13] = ReadLe32(nonce, 0);
            s[14] = ReadLe32(nonce, 4);
            s[15] = ReadLe32(nonce, 8);
        }

        private static void Core(uint[] s, uint[] x)
        {
            uint x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
            uint x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
            for (int i = 0; i < 10; i++)
            {
                // Column rounds.
                x0 += x4; x12 = Rotl(x12 ^ x0, 16); x8 += x12; x4 = Rotl(x4 ^ x8, 12);
                x0 += x4; x12 = Rotl(x12 ^ x0, 8); x8 += x12; x4 = Rotl(x4 ^ x8, 7);
                x1 += x5; x13 = Rotl(x13 ^ x1, 16); x9 += x13; x5 = Rotl(x5 ^ x9, 12);
                x1 += x5; x13 = Rotl(x13 ^ x1, 8); x9 += x13; x5 = Rotl(x5 ^ x9, 7);
                x2 += x6; x14 = Rotl(x14 ^ x2, 16); x10 += x14; x6 = Rotl(x6 ^ x10, 12);
                x2 += x6; x14 = Rotl(x14 ^ x2, 8); x10 += x14; x6 = Rotl(x6 ^ x10, 7);
                x3 += x7; x15 = Rotl(x15 ^ x3, 16); x11 += x15; x7 = Rotl(x7 ^ x11, 12);
                x3 += x7; x15 = Rotl(x15 ^ x3, 8); x11 += x15; x7 = Rotl(x7 ^ x11, 7);
                // Diagonal rounds.
                x0 += x5; x15 = Rotl(x15 ^ x0, 16); x10 += x15; x5 = Rotl(x5 ^ x10, 12);
                x0 += x5; x15 = Rotl(x15 ^ x0, 8); x10 += x15; x5 = Rotl(x5 ^ x10, 7);
                x1 += x6; x12 = Rotl(x12 ^ x1, 16); x11 += x12; x6 = Rotl(x6 ^ x11, 12);
                x1 += x6; x12 = Rotl(x12 ^ x1, 8); x11 += x12; x6 = Rotl(x6 ^ x11, 7);
                x2 += x7; x13 = Rotl(x13 ^ x2, 16); x8 += x13; x7 = Rotl(x7 ^ x8, 12);
                x2 += x7; x13 = Rotl(x13 ^ x2, 8); x8 += x13; x7 = Rotl(x7 ^ x8, 7);
                x3 += x4; x14 = Rotl(x14 ^ x3, 16); x9 += x14; x4 = Rotl(x4 ^ x9, 12);
                x3 += x4; x14 = Rotl(x14 ^ x3, 8); x9 += x14; x4 = Rotl(x4 ^ x9, 7);
            }
            x[0] = x0 + s[0]; x[1] = x1 + s[1]; x[2] = x2 + s[2]; x[3] = x3 + s[3];
            x[4] = x4 + s[4]; x[5] = x5 + s[5]; x[6] = x6 + s[6]; x[7] = x7 + s[7];
            x[8] = x8 + s[8]; x[9] = x9 + s[9]; x[10] = x10 + s[10]; x[11] = x11 + s[11];
            x[12] = x12 + s[12]; x[13] = x13 + s[13]; x[14] = x14 + s[14]; x[15] = x15 + s[15];
        }

        private static uint Rotl(uint v, int n)
        {
            return (v << n) | (v >> (32 - n));
        }

        internal static uint ReadLe32(byte[] b, int i)
        {
            return (uint)b[i] | ((uint)b[i + 1] << 8) | ((uint)b[i + 2] << 16) | ((uint)b[i + 3] << 24);
        }

        internal static void WriteLe32(byte[] b, int i, uint v)
        {
            b[i] = (byte)v;
            b[i + 1] = (byte)(v >> 8);
            b[i + 2] = (byte)(v >> 16);
            b[i + 3] = (byte)(v >> 24);
        }

        internal static void WriteLe64(byte[] b, int i, ulong v)
        {
            WriteLe32(b, i, (uint)v);
            WriteLe32(b, i + 4, (uint)(v >> 32));
        }
    }

    /// <summary>The Poly1305 one-time authenticator of RFC 8439 §2.5, in 26-bit limbs (no data-dependent branches).</summary>
    public sealed class Poly1305
    {
        private const uint Mask26 = 0x3ffffff;
        private uint r0, r1, r2, r3, r4, s1, s2, s3, s4;
        private uint pad0, pad1, pad2, pad3;
        private uint h0, h1, h2, h3, h4;
        private readonly byte[] pending = new byte[16];
        private int pendingLen;
        private bool finished;

        /// <summary>A fresh authenticator under the 32-byte one-time key at the start of <paramref name="key"/>.</summary>
        public Poly1305(byte[] key)
        {
            Init(key);
        }

        internal Poly1305()
        {
        }

        /// <summary>Starts over under a new one-time key (reuses this object).</summary>
        internal void Init(byte[] key)
        {
            if (key == null || key.Length < 32) throw new ArgumentException("Poly1305 needs a 32-byte key");
            h0 = h1 = h2 = h3 = h4 = 0;
            pendingLen = 0;
            finished = false;
            // r is clamped as the RFC says, then split into five 26-bit limbs.
            r0 = ChaCha20.ReadLe32(key, 0) & 0x3ffffff;
            r1 = (ChaCha20.ReadLe32(key, 3) >> 2) & 0x3ffff03;
            r2 = (ChaCha20.ReadLe32(key, 6) >> 4) & 0x3ffc0ff;
            r3 = (ChaCha20.ReadLe32(key, 9) >> 6) & 0x3f03fff;
            r4 = (ChaCha20.ReadLe32(key, 12) >> 8) & 0x00fffff;
            s1 = r1 * 5;
            s2 = r2 * 5;
            s3 = r3 * 5;
            s4 = r4 * 5;
            pad0 = ChaCha20.ReadLe32(key, 16);
            pad1 = ChaCha20.ReadLe32(key, 20);
            pad2 = ChaCha20.ReadLe32(key, 24);
            pad3 = ChaCha20.ReadLe32(key, 28);
        }

        /// <summary>Adds <paramref name="count"/> message bytes.</summary>
        public void Update(byte[] data, int offset, int count)
        {
            if (finished) throw new InvalidOperationException("Poly1305 already finished");
            if (pendingLen > 0)
            {
                int take = Math.Min(16 - pendingLen, count);
                Buffer.BlockCopy(data, offset, pending, pendingLen, take);
                pendingLen += take;
                offset += take;
                count -= take;
                if (pendingLen < 16) return;
                Blocks(pending, 0, 1u << 24);
                pendingLen = 0;
            }
            while (count >= 16)
            {
                Blocks(data, offset, 1u << 24);
                offset += 16;
                count -= 16;
            }
            if (count > 0)
            {
                Buffer.BlockCopy(data, offset, pending, 0, count);
                pendingLen = count;
            }
        }

        /// <summary>Writes the 16-byte tag into <paramref name="output"/>; the authenticator cannot be used again.</summary>
        public void Finish(byte[] output, int offset)
        {
            if (finished) throw new InvalidOperationException("Poly1305 already finished");
            finished = true;
            if (pendingLen > 0)
            {
                // The last partial block gets a 1 byte after it instead of the 2^128 bit.
                pending[pendingLen] = 1;
                for (int i = pendingLen + 1; i < 16; i++) pending[i] = 0;
                Blocks(pending, 0, 0);
            }
            uint c;
            c = h1 >> 26; h1 &= Mask26;
            h2 += c; c = h2 >> 26; h2 &= Mask26;
            h3 += c; c = h3 >> 26; h3 &= Mask26;
            h4 += c; c = h4 >> 26; h4 &= Mask26;
            h0 += c * 5; c = h0 >> 26; h0 &= Mask26;
            h1 += c;

            // g = h + 5 - 2^130; use g when it does not underflow, that is when h >= p.
            uint g0 = h0 + 5; c = g0 >> 26; g0 &= Mask26;
            uint g1 = h1 + c; c = g1 >> 26; g1 &= Mask26;
            uint g2 = h2 + c; c = g2 >> 26; g2 &= Mask26;
            uint g3 = h3 + c; c = g3 >> 26; g3 &= Mask26;
            uint g4 = unchecked(h4 + c - (1u << 26));
            uint useG = (g4 >> 31) - 1; // all ones when g4 did not underflow
            uint useH = ~useG;
            h0 = (h0 & useH) | (g0 & useG);
            h1 = (h1 & useH) | (g1 & useG);
            h2 = (h2 & useH) | (g2 & useG);
            h3 = (h3 & useH) | (g3 & useG);
            h4 = (h4 & useH) | (g4 & useG);

            uint w0 = h0 | (h1 << 26);
            uint w1 = (h1 >> 6) | (h2 << 20);
            uint w2 = (h2 >> 12) | (h3 << 14);
            uint w3 = (h3 >> 18) | (h4 << 8);

            ulong f = (ulong)w0 + pad0;
            ChaCha20.WriteLe32(output, offset, (uint)f);
            f = (ulong)w1 + pad1 + (f >> 32);
            ChaCha20.WriteLe32(output, offset + 4, (uint)f);
            f = (ulong)w2 + pad2 + (f >> 32);
            ChaCha20.WriteLe32(output, offset + 8, (uint)f);
            f = (ulong)w3 + pad3 + (f >> 32);
            ChaCha20.WriteLe32(output, offset + 12, (uint)f);
        }

        private void Blocks(byte[] m, int i, uint hibit)
        {
            h0 += ChaCha20.ReadLe32(m, i) & Mask26;
            h1 += (ChaCha20.ReadLe32(m, i + 3) >> 2) & Mask26;
            h2 += (ChaCha20.ReadLe32(m, i + 6) >> 4) & Mask26;
            h3 += (ChaCha20.ReadLe32(m, i + 9) >> 6) & Mask26;
            h4 += (ChaCha20.ReadLe32(m, i + 12) >> 8) | hibit;

            ulong d0 = (ulong)h0 * r0 + (ulong)h1 * s4 + (ulong)h2 * s3 + (ulong)h3 * s2 + (ulong)h4 * s1;
            ulong d1 = (ulong)h0 * r1 + (ulong)h1 * r0 + (ulong)h2 * s4 + (ulong)h3 * s3 + (ulong)h4 * s2;
            ulong d2 = (ulong)h0 * r2 + (ulong)h1 * r1 + (ulong)h2 * r0 + (ulong)h3 * s4 + (ulong)h4 * s3;
            ulong d3 = (ulong)h0 * r3 + (ulong)h1 * r2 + (ulong)h2 * r1 + (ulong)h3 * r0 + (ulong)h4 * s4;
            ulong d4 = (ulong)h0 * r4 + (ulong)h1 * r3 + (ulong)h2 * r2 + (ulong)h3 * r1 + (ulong)h4 * r0;

            ulong c = d0 >> 26; h0 = (uint)d0 & Mask26;
            d1 += c; c = d1 >> 26; h1 = (uint)d1 & Mask26;
            d2 += c; c = d2 >> 26; h2 = (uint)d2 & Mask26;
            d3 += c; c = d3 >> 26; h3 = (uint)d3 & Mask26;
            d4 += c; c = d4 >> 26; h4 = (uint)d4 & Mask26;
            h0 += (uint)c * 5; c = h0 >> 26; h0 &= Mask26;
            h1 += (uint)c;
        }
    }
}

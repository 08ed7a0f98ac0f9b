using System;
using System.IO;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>The managed crypto against RFC 8439, RFC 5869, an independent implementation, and docs/encryption.md.</summary>
    [TestFixture]
    public class CryptoTests
    {
        private static readonly byte[] Key00To1f = Hex.Range(0x00, 32);
        private static readonly byte[] Key80To9f = Hex.Range(0x80, 32);
        private const string Sunscreen =
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";

        [Test]
        public void Rfc8439_2_3_2_block_function()
        {
            var block = new byte[64];
            ChaCha20.Block(Key00To1f, Hex.Bytes("000000090000004a00000000"), 1, block);
            Assert.AreEqual("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e" +
                "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e", Hex.Of(block));
        }

        [Test]
        public void Rfc8439_A_1_block_of_zero_key_and_nonce()
        {
            var block = new byte[64];
            ChaCha20.Block(new byte[32], new byte[12], 0, block);
            Assert.AreEqual("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7" +
                "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586", Hex.Of(block));
        }

        [Test]
        public void Rfc8439_2_4_2_encryption()
        {
            byte[] pt = Encoding.ASCII.GetBytes(Sunscreen);
            var ct = new byte[pt.Length];
            ChaCha20.Xor(Key00To1f, Hex.Bytes("000000000000004a00000000"), 1, pt, 0, pt.Length, ct, 0);
            Assert.AreEqual("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab" +
                "8f593dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf8" +
                "06818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d", Hex.Of(ct));
        }

        [Test]
        public void Rfc8439_2_5_2_poly1305()
        {
            var p = new Poly1305(Hex.Bytes("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b"));
            byte[] msg = Encoding.ASCII.GetBytes("Cryptographic Forum Research Group");
            // Fed in uneven pieces: the tag must not depend on how the message is split.
            p.Update(msg, 0, 5);
            p.Update(msg, 5, 20);
            p.Update(msg, 25, msg.Length - 25);
            var tag = new byte[16];
            p.Finish(tag, 0);
            Assert.AreEqual("a8061dc1305136c6c22b8baf0c0127a9", Hex.Of(tag));
        }

        [Test]
        public void Rfc8439_A_3_poly1305_of_zeros_with_zero_key()
        {
            var p = new Poly1305(new byte[32]);
            p.Update(new byte[64], 0, 64);
            var tag = new byte[16];
            p.Finish(tag, 0);
            Assert.AreEqual("00000000000000000000000000000000", Hex.Of(tag));
        }

        [Test]
        public void Rfc8439_2_6_2_poly1305_key_generation()
        {
            var block = new byte[64];
            ChaCha20.Block(Key80To9f, Hex.Bytes("000000000001020304050607"), 0, block);
            Assert.AreEqual("8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646",
                Hex.Of(block).Substring(0, 64));
        }

        [Test]
        public void Rfc8439_2_8_2_aead()
        {
            byte[] pt = Encoding.ASCII.GetBytes(Sunscreen);
            byte[] nonce = Hex.Bytes("070000004041424344454647");
            byte[] aad = Hex.Bytes("50515253c0c1c2c3c4c5c6c7");
            var aead = new ManagedChaCha20Poly1305();
            var sealedBytes = new byte[pt.Length + 16];
            aead.Seal(Key80To9f, nonce, aad, pt, 0, pt.Length, sealedBytes, 0);
            Assert.AreEqual("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca96712" +
                "82fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675" +
                "945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" + "1ae10b594f09e26a7e902ecbd0600691",
                Hex.Of(sealedBytes));
            var back = new byte[pt.Length];
            Assert.IsTrue(aead.Open(Key80To9f, nonce, aad, sealedBytes, 0, sealedBytes.Length, back, 0));
            Assert.AreEqual(Sunscreen, Encoding.ASCII.GetString(back));
        }

        [Test]
        public void Matches_an_independent_implementation_at_every_length()
        {
            string path = TestData.Path("aead_random.txt");
            var aead = new ManagedChaCha20Poly1305();
            int checkedVectors = 0;
            foreach (string line in File.ReadAllLines(path))
            {
                if (line.StartsWith("#") || line.Trim().Length == 0) continue;
                string[] f = line.Split(' ');
                byte[] key = Hex.Bytes(f[0]), nonce = Hex.Bytes(f[1]), aad = Hex.Bytes(f[2]);
                byte[] pt = Hex.Bytes(f[3]), expected = Hex.Bytes(f[4]);
                var ct = new byte[pt.Length + 16];
                aead.Seal(key, nonce, aad, pt, 0, pt.Length, ct, 0);
                Assert.AreEqual(f[4], Hex.Of(ct), "seal of " + pt.Length + " bytes");
                var back = new byte[pt.Length];
                Assert.IsTrue(aead.Open(key, nonce, aad, expected, 0, expected.Length, back, 0));
                CollectionAssert.AreEqual(pt, back);
                checkedVectors++;
            }
            Assert.That(checkedVectors, Is.GreaterThanOrEqualTo(75));
        }

        [Test]
        public void Any_changed_byte_fails_to_open_and_writes_nothing()
        {
            var aead = new ManagedChaCha20Poly1305();
            byte[] pt = Encoding.ASCII.GetBytes("{\"proto\":\"ping\"}");
            byte[] aad = { 0, 0, 0, 32 };
            byte[] nonce = new byte[12];
            var ct = new byte[pt.Length + 16];
            aead.Seal(Key00To1f, nonce, aad, pt, 0, pt.Length, ct, 0);
            for (int i = 0; i < ct.Length; i++)
            {
                for (int bit = 0; bit < 8; bit++)
                {
                    var bad = (byte[])ct.Clone();
                    bad[i] ^= (byte)(1 << bit);
                    var outBuf = new byte[pt.Length];
                    Assert.IsFalse(aead.Open(Key00To1f, nonce, aad, bad, 0, bad.Length, outBuf, 0), "byte " + i);
                    CollectionAssert.AreEqual(new byte[pt.Length], outBuf, "nothing is written on failure");
                }
            }
            var other = new byte[pt.Length];
            Assert.IsFalse(aead.Open(Key00To1f, nonce, new byte[] { 0, 0, 0, 33 }, ct, 0, ct.Length, other, 0), "other aad");
            Assert.IsFalse(aead.Open(Key00To1f, SessionCrypto.Nonce(1), aad, ct, 0, ct.Length, other, 0), "other nonce");
            Assert.IsFalse(aead.Open(Key80To9f, nonce, aad, ct, 0, ct.Length, other, 0), "other key");
            Assert.IsFalse(aead.Open(Key00To1f, nonce, aad, ct, 0, 15, other, 0), "shorter than a tag");
        }

        [Test]
        public void Fixed_time_comparison_finds_a_difference_anywhere()
        {
            byte[] a = Hex.Range(1, 16);
            Assert.IsTrue(FixedTime.AreEqual(a, 0, (byte[])a.Clone(), 0, 16));
            for (int i = 0; i < 16; i++)
            {
                var b = (byte[])a.Clone();
                b[i] ^= 0x80;
                Assert.IsFalse(FixedTime.AreEqual(a, 0, b, 0, 16), "position " + i);
            }
            Assert.IsTrue(FixedTime.AreEqual(new byte[] { 9, 1, 2 }, 1, new byte[] { 1, 2, 7 }, 0, 2), "offsets");
        }

        [Test]
        public void Rfc5869_hkdf_sha256_test_case_1()
        {
            byte[] okm = Hkdf.DeriveKey(Hex.Repeat(0x0b, 22), Hex.Range(0x00, 13), Hex.Range(0xf0, 10), 42);
            Assert.AreEqual("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
                Hex.Of(okm));
        }

        [Test]
        public void Rfc5869_hkdf_sha256_test_case_3_empty_salt_and_info()
        {
            byte[] okm = Hkdf.DeriveKey(Hex.Repeat(0x0b, 22), new byte[0], new byte[0], 42);
            Assert.AreEqual("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
                Hex.Of(okm));
        }

        // ---- docs/encryption.md §7 ----

        private static readonly byte[] DocSalt = Hex.Range(0x20, 32);

        [Test]
        public void Doc_keys()
        {
            Assert.AreEqual(Key00To1f, SessionCrypto.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "key"));
            Assert.AreEqual(DocSalt, SessionCrypto.DecodeKey("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=", "salt"));
            byte[] c2s, s2c;
            SessionCrypto.DeriveKeys(Key00To1f, DocSalt, out c2s, out s2c);
            Assert.AreEqual("5b393e88c29a8a9102db92cb04256cdfcae6d236b5ab8e3b1fad88ee5e8905f4", Hex.Of(c2s));
            Assert.AreEqual("023469d9001d483c6dec77b8552ac4589ecd23cc8dcb51b268603c8aa0ac0661", Hex.Of(s2c));
        }

        [Test]
        public void Doc_handshake_frame()
        {
            byte[] wire = Hex.Bytes("000000707b2270726f746f223a2268616e647368616b65222c2264617461223a7b2273616c74223a22494345694979516c4a69636f4b" +
                "536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d222c22636970686572223a226368616368613230706f6c" +
                "7931333035227d7d");
            var decoder = new FrameDecoder();
            decoder.Push(wire, 0, wire.Length);
            byte[] body;
            Assert.IsTrue(decoder.TryNext(out body));
            Assert.AreEqual(112, body.Length);
            var hs = (Handshake)ServerMessageParser.ParseFirst(body);
            Assert.IsTrue(hs.Sealed);
            CollectionAssert.AreEqual(DocSalt, hs.Salt);
        }

        [Test]
        public void Doc_client_frames_seal_to_the_vectors()
        {
            FrameSealer sealer;
            FrameOpener opener;
            SessionCrypto.ClientSide(Key00To1f, DocSalt, null, out sealer, out opener);
            Assert.AreEqual("0000002060f2853c33db399a7936a7131f58bfffc6cb621b9c537eab25494152c9bca55f",
                Hex.Of(Wire(sealer.SealBody(Ascii("{\"proto\":\"ping\"}"), 0, 16))));
            Assert.AreEqual("0000002732e1bf3ff93d035c70b19859293d4df353058845adc21e6afff8c643365715977426da55c5b03a",
                Hex.Of(Wire(sealer.SealBody(Ascii("{\"proto\":\"sync_action\"}"), 0, 23))));
            Assert.AreEqual(2UL, sealer.Counter);
        }

        private const string DocFrame3 = "0000004c5132b3dfc1a3634630f0a0f97e30e52b7392cdc3abcb8bce3779561292ad82783767c2355da8b5b6629d9daaf44ad71b" +
            "b2444b2804a4ebc6f9abb4b6fbcf74c7ab4f70e37944f5717a7d2d64";

        [Test]
        public void Doc_server_frame_opens_once()
        {
            FrameSealer sealer;
            FrameOpener opener;
            SessionCrypto.ClientSide(Key00To1f, DocSalt, null, out sealer, out opener);
            byte[] wire = Hex.Bytes(DocFrame3);
            byte[] plain = opener.OpenBody(wire, 4, wire.Length - 4);
            Assert.AreEqual("{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":0,\"actions\":[]}}", Encoding.UTF8.GetString(plain));
            Assert.AreEqual(1UL, opener.Counter);
            // The same frame again (a replay) needs counter 0, which is used up.
            var e = Assert.Throws<MovanException>(() => opener.OpenBody(wire, 4, wire.Length - 4));
            Assert.AreEqual(ErrorKind.Crypto, e.Kind);
            Assert.AreEqual(1UL, opener.Counter, "a failed open does not advance the counter");
        }

        [Test]
        public void Doc_server_frame_fails_under_the_wrong_direction_key_or_a_changed_prefix()
        {
            byte[] c2s, s2c;
            SessionCrypto.DeriveKeys(Key00To1f, DocSalt, out c2s, out s2c);
            byte[] wire = Hex.Bytes(DocFrame3);
            var wrongDirection = new FrameOpener(new ManagedChaCha20Poly1305(), c2s);
            Assert.Throws<MovanException>(() => wrongDirection.OpenBody(wire, 4, wire.Length - 4));
            // A body one byte shorter has another length, so another AAD: the tag fails.
            var opener = new FrameOpener(new ManagedChaCha20Poly1305(), s2c);
            Assert.Throws<MovanException>(() => opener.OpenBody(wire, 4, wire.Length - 5));
            Assert.Throws<MovanException>(() => opener.OpenBody(wire, 4, 15));
            Assert.AreEqual("{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":0,\"actions\":[]}}",
                Encoding.UTF8.GetString(opener.OpenBody(wire, 4, wire.Length - 4)));
        }

        [Test]
        public void Protocol_section_2_sealed_examples()
        {
            // docs/protocol.md §2: the plaintext examples, sealed with the test keys at counter 0 of each direction.
            FrameSealer sealer;
            FrameOpener opener;
            SessionCrypto.ClientSide(Key00To1f, DocSalt, null, out sealer, out opener);
            byte[] ping = ClientMessages.Envelope("1001", null, "ping", null, null, null);
            Assert.AreEqual("0000003c60f28027388d6c9a7224e74b5313bfe7e23d3505c56b19bc87f94017cdc5e000af4722890ee96954ada4e642" +
                "710ce11bbd47d740f51e7899d8116c7c", Hex.Of(Wire(sealer.SealBody(ping, 0, ping.Length))));
            byte[] wire = Hex.Bytes("0000004c5132b3dfc1a3634630f0a0f97e30e52b7392cdc3abcb8bce3779561292ad82783767c2355da8b5b6629d9daa" +
                "f54ad71bb2444b2804a4ebc6f9abb4b63760d7bd7a38ada33e36028019715d05");
            var f = (Frame)ServerMessageParser.Parse(opener.OpenBody(wire, 4, wire.Length - 4));
            Assert.AreEqual(1, f.FrameCount);
            Assert.AreEqual(0, f.Actions.Count);
        }

        [Test]
        public void Bad_session_keys_and_salts_are_crypto_errors()
        {
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => SessionCrypto.DecodeKey("not base64!", "k")).Kind);
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => SessionCrypto.DecodeKey("AAEC", "k")).Kind);
            byte[] body = Encoding.UTF8.GetBytes("{\"proto\":\"handshake\",\"data\":{\"salt\":\"AAEC\",\"cipher\":\"chacha20poly1305\"}}");
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => ServerMessageParser.ParseFirst(body)).Kind);
            body = Encoding.UTF8.GetBytes("{\"proto\":\"handshake\",\"data\":{\"salt\":null,\"cipher\":\"aes-gcm\"}}");
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => ServerMessageParser.ParseFirst(body)).Kind);
            body = Encoding.UTF8.GetBytes("{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":1.0}}");
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => ServerMessageParser.ParseFirst(body)).Kind,
                "a server without encrypted sessions");
            var plain = (Handshake)ServerMessageParser.ParseFirst(
                Encoding.UTF8.GetBytes("{\"proto\":\"handshake\",\"data\":{\"salt\":null,\"cipher\":\"none\"}}"));
            Assert.IsFalse(plain.Sealed);
        }

        [Test]
        public void Nonce_is_four_zero_bytes_then_the_big_endian_counter()
        {
            Assert.AreEqual("000000000000000000000000", Hex.Of(SessionCrypto.Nonce(0)));
            Assert.AreEqual("000000000102030405060708", Hex.Of(SessionCrypto.Nonce(0x0102030405060708)));
            Assert.AreEqual("00000000fffffffffffffffe", Hex.Of(SessionCrypto.Nonce(ulong.MaxValue - 1)));
        }

        private static byte[] Ascii(string s)
        {
            return Encoding.ASCII.GetBytes(s);
        }

        private static byte[] Wire(byte[] body)
        {
            return FrameDecoder.Encode(body, 0, body.Length);
        }
    }

    internal static class Hex
    {
        public static byte[] Bytes(string hex)
        {
            if (hex == "-") return new byte[0];
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }

        public static string Of(byte[] b)
        {
            var sb = new StringBuilder(b.Length * 2);
            foreach (byte x in b) sb.Append(x.ToString("x2"));
            return sb.Length == 0 ? "-" : sb.ToString();
        }

        public static byte[] Range(int first, int count)
        {
            var b = new byte[count];
            for (int i = 0; i < count; i++) b[i] = (byte)(first + i);
            return b;
        }

        public static byte[] Repeat(byte v, int count)
        {
            var b = new byte[count];
            for (int i = 0; i < count; i++) b[i] = v;
            return b;
        }
    }

    internal static class TestData
    {
        /// <summary>A file of Tests~/vectors/ (test.sh points MOVAN_CS_TEST_DATA there).</summary>
        public static string Path(string name)
        {
            string dir = Environment.GetEnvironmentVariable("MOVAN_CS_TEST_DATA");
            if (string.IsNullOrEmpty(dir)) dir = System.IO.Path.GetDirectoryName(typeof(TestData).Assembly.Location);
            return System.IO.Path.Combine(dir, name);
        }
    }
}

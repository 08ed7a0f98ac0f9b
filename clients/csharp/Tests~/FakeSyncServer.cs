using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Movan.Client;

namespace Movan.Client.Tests
{
    /// <summary>
    /// A scripted sync server on a free loopback port: the test plays the server's side of the protocol, byte for
    /// byte, with the session crypto of docs/encryption.md.
    /// </summary>
    internal sealed class FakeSyncServer : IDisposable
    {
        public static readonly byte[] Key = Hex.Range(0x00, 32);
        public const string KeyBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        public static readonly byte[] Salt = Hex.Range(0x20, 32);
        private readonly TcpListener listener;

        public FakeSyncServer()
        {
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
        }

        public string Address { get { return "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port; } }

        /// <summary>The next connection, or null when none comes within <paramref name="timeoutMs"/>.</summary>
        public Peer Accept(int timeoutMs = 10000)
        {
            if (!listener.Server.Poll(timeoutMs * 1000, SelectMode.SelectRead)) return null;
            Socket s = listener.AcceptSocket();
            s.ReceiveTimeout = 10000;
            s.NoDelay = true;
            return new Peer(s);
        }

        public void Dispose()
        {
            listener.Stop();
        }

        public static SyncConnectOptions Options(string address)
        {
            return new SyncConnectOptions { Address = address, Uid = "1001", Token = "tok", SessionKey = KeyBase64 };
        }

        internal sealed class Peer : IDisposable
        {
            private readonly Socket socket;
            private readonly FrameDecoder decoder = new FrameDecoder();
            private readonly byte[] buf = new byte[65536];
            private FrameSealer sealer;
            private FrameOpener opener;

            public Peer(Socket socket)
            {
                this.socket = socket;
            }

            /// <summary>The next client body, opened when sealed; null at end of stream.</summary>
            public JsonValue Read()
            {
                byte[] body;
                while (!decoder.TryNext(out body))
                {
                    int n = socket.Receive(buf);
                    if (n == 0) return null;
                    decoder.Push(buf, 0, n);
                }
                if (opener != null) body = opener.OpenBody(body, 0, body.Length);
                return JsonValue.Parse(body);
            }

            /// <summary>Reads the plaintext first message and answers with the sealed handshake of <see cref="Salt"/>.</summary>
            public JsonValue Handshake()
            {
                JsonValue first = Read();
                SendPlain("{\"proto\":\"handshake\",\"data\":{\"salt\":\"" + Convert.ToBase64String(Salt) + "\",\"cipher\":\"chacha20poly1305\"}}");
                byte[] c2s, s2c;
                SessionCrypto.DeriveKeys(Key, Salt, out c2s, out s2c);
                sealer = new FrameSealer(new ManagedChaCha20Poly1305(), s2c);
                opener = new FrameOpener(new ManagedChaCha20Poly1305(), c2s);
                return first;
            }

            /// <summary>The whole sequence: handshake, the sealed ping, then <paramref name="before"/> and both pongs.</summary>
            public void Accept(params string[] before)
            {
                Handshake();
                Read();
                foreach (string m in before) Send(m);
                Send(Pong);
                Send(Pong);
            }

            public const string Pong = "{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":1700000000.5}}";

            public static string FrameJson(long n)
            {
                return "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":" + n + ",\"actions\":[]}}";
            }

            public void SendPlain(string json)
            {
                byte[] b = Encoding.UTF8.GetBytes(json);
                Write(FrameDecoder.Encode(b, 0, b.Length));
            }

            /// <summary>The wire bytes of a sealed frame (the next counter), without sending them.</summary>
            public byte[] Seal(string json)
            {
                byte[] b = Encoding.UTF8.GetBytes(json);
                byte[] body = sealer.SealBody(b, 0, b.Length);
                return FrameDecoder.Encode(body, 0, body.Length);
            }

            public void Send(string json)
            {
                Write(sealer != null ? Seal(json) : Plain(json));
            }

            private static byte[] Plain(string json)
            {
                byte[] b = Encoding.UTF8.GetBytes(json);
                return FrameDecoder.Encode(b, 0, b.Length);
            }

            public void Write(byte[] wire)
            {
                int sent = 0;
                while (sent < wire.Length) sent += socket.Send(wire, sent, wire.Length - sent, SocketFlags.None);
            }

            public void Dispose()
            {
                try
                {
                    socket.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                }
                socket.Close();
            }
        }
    }
}

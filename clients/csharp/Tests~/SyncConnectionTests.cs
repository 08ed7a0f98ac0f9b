using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>SyncConnection and the GameSession shell against a scripted server over real loopback sockets.</summary>
    [TestFixture]
    public class SyncConnectionTests
    {
        private static readonly TimeSpan T = TimeSpan.FromSeconds(10);
        private FakeSyncServer fake;

        [SetUp]
        public void StartFake()
        {
            fake = new FakeSyncServer();
        }

        [TearDown]
        public void StopFake()
        {
            fake.Dispose();
        }

        private Task Serve(Action<FakeSyncServer.Peer> script)
        {
            return Task.Run(() =>
            {
                using (FakeSyncServer.Peer p = fake.Accept()) script(p);
            });
        }

        private static void Done(Task server)
        {
            Assert.IsTrue(server.Wait(T), "the fake server's script did not finish");
        }

        [Test]
        public void The_connection_sequence_proves_the_key_and_keeps_what_came_before_the_pongs()
        {
            JsonValue first = null, second = null, later = null;
            Task server = Serve(p =>
            {
                first = p.Handshake();
                second = p.Read();
                p.Send("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":4,\"min_players\":2,\"status\":\"playing\",\"members\":[]}}");
                p.Send(FakeSyncServer.Peer.Pong);
                p.Send(FakeSyncServer.Peer.FrameJson(0));
                p.Send(FakeSyncServer.Peer.Pong);
                p.Send(FakeSyncServer.Peer.FrameJson(1));
                later = p.Read();
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                Assert.IsTrue(c.IsSealed);
                Assert.IsInstanceOf<RoomState>(c.Receive(T));
                Assert.AreEqual(0, ((Frame)c.Receive(T)).FrameCount);
                Assert.AreEqual(1, ((Frame)c.Receive(T)).FrameCount);
                c.EnterRoom("lobby-7");
                Done(server);
            }
            Assert.AreEqual("1001", first["uid"].AsString());
            Assert.AreEqual("tok", first["token"].AsString(), "the token travels on the plaintext first message only");
            Assert.AreEqual("ping", first["extra_data"]["proto"].AsString());
            Assert.IsNull(second["token"], "the sealed ping carries no token");
            Assert.AreEqual("ping", second["extra_data"]["proto"].AsString());
            Assert.AreEqual("room_enter", later["extra_data"]["proto"].AsString());
            Assert.AreEqual("lobby-7", later["extra_data"]["data"]["room_id"].AsString());
        }

        [Test]
        public void Split_and_merged_server_frames_all_arrive()
        {
            Task server = Serve(p =>
            {
                p.Accept();
                var merged = new List<byte>();
                for (int i = 0; i < 3; i++) merged.AddRange(p.Seal(FakeSyncServer.Peer.FrameJson(i)));
                p.Write(merged.ToArray());
                byte[] split = p.Seal(FakeSyncServer.Peer.FrameJson(3));
                foreach (int[] piece in new[] { new[] { 0, 2 }, new[] { 2, 9 }, new[] { 11, split.Length - 11 } })
                {
                    var part = new byte[piece[1]];
                    Array.Copy(split, piece[0], part, 0, piece[1]);
                    p.Write(part);
                    Thread.Sleep(20); // separate TCP segments
                }
                p.Read();
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                for (int i = 0; i < 4; i++) Assert.AreEqual(i, ((Frame)c.Receive(T)).FrameCount);
                c.Ping();
                Done(server);
            }
        }

        [Test]
        public void A_refused_first_message_is_a_server_error_with_its_code()
        {
            Task server = Serve(p =>
            {
                p.Read();
                p.SendPlain("{\"proto\":\"error\",\"data\":{\"code\":\"bad_token\",\"message\":\"bad signature\",\"proto\":\"ping\"}}");
            });
            var e = Assert.Throws<MovanException>(() => SyncConnection.Connect(FakeSyncServer.Options(fake.Address)));
            Assert.AreEqual(ErrorKind.Server, e.Kind);
            Assert.AreEqual(ErrorCode.BadToken, e.SyncCode);
            Assert.AreEqual("bad_token", e.Code);
            Assert.AreEqual("ping", e.Proto);
            Done(server);
        }

        [Test]
        public void A_tampered_frame_closes_the_connection_with_a_crypto_error()
        {
            bool clientHungUp = false;
            Task server = Serve(p =>
            {
                p.Accept();
                p.Send(FakeSyncServer.Peer.FrameJson(0));
                byte[] wire = p.Seal(FakeSyncServer.Peer.FrameJson(1));
                wire[10] ^= 1;
                p.Write(wire);
                clientHungUp = p.Read() == null;
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                Assert.AreEqual(0, ((Frame)c.Receive(T)).FrameCount);
                Assert.IsNull(c.Receive(T), "nothing after the bad frame");
                Assert.AreEqual(ErrorKind.Crypto, c.CloseReason.Kind);
                Assert.IsFalse(c.IsOpen);
                Assert.AreEqual(ErrorKind.Closed, Assert.Throws<MovanException>(() => c.Ping()).Kind);
                Done(server);
            }
            Assert.IsTrue(clientHungUp, "the client closes the connection itself");
        }

        [Test]
        public void Handshake_failures()
        {
            // No answer at all (the second read ends when the client gives up and hangs up).
            Task silent = Serve(p =>
            {
                p.Read();
                p.Read();
            });
            SyncConnectOptions o = FakeSyncServer.Options(fake.Address);
            o.HandshakeTimeout = TimeSpan.FromMilliseconds(300);
            Assert.AreEqual(ErrorKind.Timeout, Assert.Throws<MovanException>(() => SyncConnection.Connect(o)).Kind);
            Done(silent);
            // Encryption required, but no session key.
            Task sealedOnly = Serve(p => p.Handshake());
            o = FakeSyncServer.Options(fake.Address);
            o.SessionKey = null;
            StringAssert.Contains("no session key", Assert.Throws<MovanException>(() => SyncConnection.Connect(o)).Message);
            Done(sealedOnly);
            // The server hangs up after the sealed ping: it did not open.
            Task wrongKey = Serve(p =>
            {
                p.Handshake();
                p.Read();
            });
            var e = Assert.Throws<MovanException>(() => SyncConnection.Connect(FakeSyncServer.Options(fake.Address)));
            Assert.AreEqual(ErrorKind.Closed, e.Kind);
            StringAssert.Contains("wrong session key", e.Message);
            Done(wrongKey);
            // A bad key fails before connecting.
            o = FakeSyncServer.Options(fake.Address);
            o.SessionKey = "AAEC";
            Assert.AreEqual(ErrorKind.Crypto, Assert.Throws<MovanException>(() => SyncConnection.Connect(o)).Kind);
            Assert.IsNull(fake.Accept(100));
        }

        [Test]
        public void A_plaintext_server_keeps_everything_plaintext()
        {
            Task server = Serve(p =>
            {
                p.Read();
                p.SendPlain("{\"proto\":\"handshake\",\"data\":{\"salt\":null,\"cipher\":\"none\"}}");
                p.SendPlain(FakeSyncServer.Peer.Pong);
                p.SendPlain(FakeSyncServer.Peer.FrameJson(0));
                Assert.AreEqual("ping", p.Read()["extra_data"]["proto"].AsString());
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                Assert.IsFalse(c.IsSealed);
                Assert.AreEqual(0, ((Frame)c.Receive(T)).FrameCount);
                c.Ping();
                Done(server);
            }
        }

        [Test]
        public void An_oversized_server_frame_is_a_protocol_error()
        {
            Task server = Serve(p =>
            {
                p.Accept();
                p.Write(new byte[] { 0x01, 0x00, 0x00, 0x01 }); // 16 MiB + 1
                p.Read();
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                Assert.IsNull(c.Receive(T));
                Assert.AreEqual(ErrorKind.Protocol, c.CloseReason.Kind);
                Done(server);
            }
        }

        [Test]
        public void A_reload_collects_its_chunks_and_keeps_live_frames_queued()
        {
            JsonValue request = null;
            Task server = Serve(p =>
            {
                p.Accept();
                request = p.Read();
                p.Send(FakeSyncServer.Peer.FrameJson(7));
                p.Send("{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":5,\"end_frame\":7,\"last\":false,\"frames\":[{\"frame_count\":5,\"actions\":[]}]}}");
                p.Send("{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":6,\"end_frame\":7,\"last\":true,\"frames\":[{\"frame_count\":6,\"actions\":[]}]}}");
                p.Read();
                p.Send("{\"proto\":\"error\",\"data\":{\"code\":\"history_expired\",\"message\":\"gone\",\"proto\":\"sync_request_reload_frames\"}}");
                p.Read();
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                List<Frame> frames = c.Reload(5, T);
                Assert.AreEqual(new long[] { 5, 6 }, frames.ConvertAll(f => f.FrameCount).ToArray());
                Assert.AreEqual(5, request["extra_data"]["data"]["start_frame"].AsInt64());
                Assert.AreEqual(7, ((Frame)c.Receive(T)).FrameCount, "the live frame stays queued");
                var e = Assert.Throws<MovanException>(() => c.Reload(0, T));
                Assert.AreEqual(ErrorCode.HistoryExpired, e.SyncCode);
                c.Ping();
                Done(server);
            }
        }

        [Test]
        public void Messages_above_the_limit_are_refused_before_sending()
        {
            Task server = Serve(p =>
            {
                p.Accept();
                Assert.AreEqual("ping", p.Read()["extra_data"]["proto"].AsString(), "the big action never went out");
            });
            using (SyncConnection c = SyncConnection.Connect(FakeSyncServer.Options(fake.Address)))
            {
                string big = "{\"a\":\"" + new string('x', 65536) + "\"}";
                Assert.AreEqual(ErrorKind.TooLarge, Assert.Throws<MovanException>(() => c.SendAction(big)).Kind);
                c.Ping();
                Done(server);
            }
        }

        // ---- the GameSession shell ----

        private static TEvent NextOf<TEvent>(GameSession game) where TEvent : GameEvent
        {
            DateTime deadline = DateTime.UtcNow + T;
            while (DateTime.UtcNow < deadline)
            {
                GameEvent ev = game.NextEvent(TimeSpan.FromMilliseconds(100));
                var match = ev as TEvent;
                if (match != null) return match;
            }
            Assert.Fail("no " + typeof(TEvent).Name);
            return null;
        }

        private static Session FakeSession(string address)
        {
            return new Session { Uid = "1001", Token = "tok", RefreshToken = "r", ExpiresIn = 3600, SyncAddr = address, SessionKey = FakeSyncServer.KeyBase64 };
        }

        private const string GameStartJson = "{\"proto\":\"game_start\",\"data\":{\"room_id\":\"r\",\"start_time\":1700000000.5,\"frame_interval_ms\":50,\"members\":[\"1001\"],\"seed\":1}}";

        [Test]
        public void A_game_session_reconnects_after_a_drop_and_delivers_every_frame_once()
        {
            JsonValue reload = null;
            Task server = Task.Run(() =>
            {
                using (FakeSyncServer.Peer p = fake.Accept())
                {
                    p.Accept(GameStartJson);
                    for (int i = 0; i < 3; i++) p.Send(FakeSyncServer.Peer.FrameJson(i));
                }
                // Dropped. The reconnect rebinds: the same game_start again, then a live frame before the reload.
                using (FakeSyncServer.Peer p = fake.Accept())
                {
                    p.Accept(GameStartJson);
                    reload = p.Read();
                    p.Send(FakeSyncServer.Peer.FrameJson(5));
                    p.Send("{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":3,\"end_frame\":5,\"last\":true,\"frames\":[{\"frame_count\":3,\"actions\":[]},{\"frame_count\":4,\"actions\":[]}]}}");
                    p.Send(FakeSyncServer.Peer.FrameJson(6));
                    p.Read(); // until the client closes
                }
            });
            var options = new GameSessionOptions { Policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(10) } };
            using (GameSession game = GameSession.Connect(FakeSession(fake.Address), options))
            {
                var frames = new List<long>();
                int starts = 0, reconnecting = 0, testThread = Thread.CurrentThread.ManagedThreadId, handlerThread = -1;
                ReconnectedEvent back = null;
                game.FrameReceived += f => frames.Add(f.FrameCount);
                game.GameStarted += g =>
                {
                    starts++;
                    handlerThread = Thread.CurrentThread.ManagedThreadId;
                };
                game.Reconnecting += r => reconnecting++;
                game.Reconnected += r => back = r;
                DateTime deadline = DateTime.UtcNow + T;
                while (frames.Count < 7 && DateTime.UtcNow < deadline)
                {
                    game.Poll();
                    Thread.Sleep(5);
                }
                CollectionAssert.AreEqual(new long[] { 0, 1, 2, 3, 4, 5, 6 }, frames);
                Assert.AreEqual(1, starts, "the repeated game_start is not shown again");
                Assert.AreEqual(testThread, handlerThread, "handlers run on the thread that polls");
                Assert.AreEqual(1, reconnecting);
                Assert.AreEqual(3, back.ReloadFrom);
                Assert.AreEqual(3, reload["extra_data"]["data"]["start_frame"].AsInt64());
                Assert.AreEqual(2, game.ReloadedFrames);
            }
            Done(server);
        }

        /// <summary>Reads client messages until one of <paramref name="proto"/> (pings may come first).</summary>
        private static JsonValue ReadUntil(FakeSyncServer.Peer p, string proto)
        {
            JsonValue m;
            while ((m = p.Read()) != null)
            {
                if (m["extra_data"]["proto"].AsString() == proto) return m;
            }
            Assert.Fail("no " + proto);
            return null;
        }

        private static string ReloadJson(long start, long end)
        {
            var frames = new List<string>();
            for (long i = start; i < end; i++) frames.Add("{\"frame_count\":" + i + ",\"actions\":[]}");
            return "{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":" + start + ",\"end_frame\":" + end +
                ",\"last\":true,\"frames\":[" + string.Join(",", frames.ToArray()) + "]}}";
        }

        [Test]
        public void A_spectating_game_session_watches_again_after_a_drop()
        {
            var watched = new List<string>();
            Task server = Task.Run(() =>
            {
                using (FakeSyncServer.Peer p = fake.Accept())
                {
                    p.Accept();
                    watched.Add(ReadUntil(p, "room_spectate")["extra_data"]["data"]["room_id"].AsString());
                    p.Send(GameStartJson);
                    p.Send(ReloadJson(0, 3));
                    p.Send(FakeSyncServer.Peer.FrameJson(3));
                }
                // Dropped. No seat to rebind: nothing comes until the session spectates again.
                using (FakeSyncServer.Peer p = fake.Accept())
                {
                    p.Accept();
                    watched.Add(ReadUntil(p, "room_spectate")["extra_data"]["data"]["room_id"].AsString());
                    p.Send(GameStartJson);
                    p.Send(ReloadJson(0, 6));
                    p.Send(FakeSyncServer.Peer.FrameJson(6));
                    p.Read(); // until the client closes
                }
            });
            var options = new GameSessionOptions { Policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(10) } };
            using (GameSession game = GameSession.Connect(FakeSession(fake.Address), options))
            {
                var frames = new List<long>();
                int starts = 0;
                game.FrameReceived += f => frames.Add(f.FrameCount);
                game.GameStarted += g => starts++;
                game.Spectate("r");
                Assert.AreEqual("r", game.Watching);
                DateTime deadline = DateTime.UtcNow + T;
                while (frames.Count < 7 && DateTime.UtcNow < deadline)
                {
                    game.Poll();
                    Thread.Sleep(5);
                }
                CollectionAssert.AreEqual(new long[] { 0, 1, 2, 3, 4, 5, 6 }, frames);
                Assert.AreEqual(1, starts, "the repeated game_start is not shown again");
                Assert.AreEqual("r", game.Watching);
            }
            Done(server);
            CollectionAssert.AreEqual(new[] { "r", "r" }, watched);
        }

        [Test]
        public void Close_writes_what_was_queued_before_it()
        {
            var got = new List<string>();
            Task server = Serve(p =>
            {
                p.Accept();
                JsonValue m;
                while ((m = p.Read()) != null) got.Add(m["extra_data"]["proto"].AsString());
            });
            GameSession game = GameSession.Connect(FakeSession(fake.Address));
            for (int i = 0; i < 50; i++) game.SendAction("{\"i\":" + i + "}");
            game.LeaveRoom();
            game.Close();
            Assert.IsNull(NextOf<ClosedEvent>(game).Error);
            Done(server);
            got.RemoveAll(p => p == "ping");
            Assert.AreEqual(51, got.Count);
            Assert.AreEqual("room_leave", got[50], "the leave goes out, last, before the close");
        }

        [Test]
        public void A_replaced_game_session_ends_and_never_reconnects()
        {
            Task server = Serve(p =>
            {
                p.Accept();
                p.Send("{\"proto\":\"error\",\"data\":{\"code\":\"replaced\",\"message\":\"this player connected again\",\"proto\":null}}");
            });
            var options = new GameSessionOptions { Policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(10) } };
            using (GameSession game = GameSession.Connect(FakeSession(fake.Address), options))
            {
                Assert.AreEqual(ErrorCode.Replaced, NextOf<ErrorEvent>(game).Error.Code);
                var closed = NextOf<ClosedEvent>(game);
                Assert.AreEqual("replaced", closed.Error.Code);
                Assert.IsTrue(game.IsClosed);
                Assert.AreEqual(ErrorKind.Closed, Assert.Throws<MovanException>(() => game.Ping()).Kind);
            }
            Done(server);
            Assert.IsNull(fake.Accept(500), "no reconnect attempt");
        }
    }
}

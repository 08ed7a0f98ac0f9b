using System;
using System.Text;
using Movan.Client;
using NUnit.Framework;

namespace Movan.Client.Tests
{
    /// <summary>The message parser and builder against the examples of docs/protocol.md, and against hostile input.</summary>
    [TestFixture]
    public class ParserTests
    {
        private static ServerMessage Parse(string json)
        {
            return ServerMessageParser.Parse(Encoding.UTF8.GetBytes(json));
        }

        private static MovanException Fails(string json)
        {
            return Assert.Throws<MovanException>(() => Parse(json), json);
        }

        [Test]
        public void Doc_room_left()
        {
            var l = (RoomLeft)Parse("{\"proto\":\"room_left\",\"data\":{\"room_id\":\"lobby-7\"}}");
            Assert.AreEqual("lobby-7", l.RoomId);
            Assert.AreEqual("room_left", l.Proto);
            Assert.IsNull(l.Reason);
        }

        [Test]
        public void Doc_room_left_after_the_waiting_room_timeout()
        {
            var l = (RoomLeft)Parse("{\"proto\":\"room_left\",\"data\":{\"room_id\":\"lobby-7\",\"reason\":"
                + "\"waiting_room_timeout\",\"message\":\"no game started\"}}");
            Assert.AreEqual("lobby-7", l.RoomId);
            Assert.AreEqual(RoomLeft.WaitingRoomTimeout, l.Reason);
            Assert.AreEqual("no game started", l.Message);
        }

        [Test]
        public void Doc_room_state()
        {
            var s = (RoomState)Parse("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"lobby-7\",\"capacity\":4,\"min_players\":2,\"status\":\"waiting\",\"members\":[{\"uid\":\"1001\",\"ready\":true,\"connected\":true},{\"uid\":\"1002\",\"ready\":false,\"connected\":true}]}}");
            Assert.AreEqual("lobby-7", s.RoomId);
            Assert.AreEqual(4, s.Capacity);
            Assert.AreEqual(2, s.MinPlayers);
            Assert.AreEqual(RoomStatus.Waiting, s.Status);
            Assert.AreEqual(2, s.Members.Count);
            Assert.AreEqual("1002", s.Members[1].Uid);
            Assert.IsTrue(s.Members[0].Ready);
            Assert.IsFalse(s.Members[1].Ready);
            Assert.IsTrue(s.Members[1].Connected);
        }

        [Test]
        public void Doc_game_start()
        {
            var g = (GameStart)Parse("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"lobby-7\",\"start_time\":1700000000.0,\"frame_interval_ms\":50,\"members\":[\"1001\",\"1002\"],\"seed\":3543144545}}");
            Assert.AreEqual("lobby-7", g.RoomId);
            Assert.AreEqual(1700000000.0, g.StartTime);
            Assert.AreEqual(50, g.FrameIntervalMs);
            CollectionAssert.AreEqual(new[] { "1001", "1002" }, g.Members);
            Assert.AreEqual(3543144545u, g.Seed);
            Assert.AreEqual(uint.MaxValue, ((GameStart)Parse("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"r\",\"start_time\":1,\"frame_interval_ms\":50,\"members\":[],\"seed\":4294967295}}")).Seed);
            Fails("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"r\",\"start_time\":1,\"frame_interval_ms\":50,\"members\":[],\"seed\":4294967296}}");
        }

        [Test]
        public void Doc_game_start_with_the_checksum_interval_and_doc_desync()
        {
            var g = (GameStart)Parse("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"lobby-7\",\"start_time\":1700000000.0,\"frame_interval_ms\":50,\"members\":[\"1001\",\"1002\"],\"seed\":3543144545,\"checksum_interval\":60}}");
            Assert.AreEqual(60, g.ChecksumInterval);
            var d = (Desync)Parse("{\"proto\":\"desync\",\"data\":{\"frame\":60,\"groups\":[{\"hash\":\"9f2c4e01a7b3d855\",\"uids\":[\"1001\",\"1002\",\"1003\"]},{\"hash\":\"01d7aa5c3e9b2f64\",\"uids\":[\"1004\"]}],\"majority\":\"9f2c4e01a7b3d855\"}}");
            Assert.AreEqual(60, d.Frame);
            Assert.AreEqual(2, d.Groups.Count);
            CollectionAssert.AreEqual(new[] { "1001", "1002", "1003" }, d.Groups[0].Uids);
            Assert.AreEqual("9f2c4e01a7b3d855", d.Majority);
            Assert.IsTrue(d.Diverged("1004"));
            Assert.IsFalse(d.Diverged("1001"));
            var tie = (Desync)Parse("{\"proto\":\"desync\",\"data\":{\"frame\":0,\"groups\":[{\"hash\":\"a\",\"uids\":[\"1\"]},{\"hash\":\"b\",\"uids\":[\"2\"]}],\"majority\":null}}");
            Assert.IsNull(tie.Majority);
            Assert.IsFalse(tie.Diverged("2"));
            Fails("{\"proto\":\"desync\",\"data\":{\"frame\":-1,\"groups\":[],\"majority\":null}}");
            Assert.AreEqual("{\"frame\":60,\"hash\":\"9f2c\"}", ClientMessages.ChecksumData(60, "9f2c"));
            Assert.Throws<ArgumentException>(() => ClientMessages.ChecksumData(60, ""));
            Assert.Throws<ArgumentException>(() => ClientMessages.ChecksumData(60, new string('h', 65)));
            var st = (RoomState)Parse("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":4,\"min_players\":2,\"status\":\"playing\",\"members\":[],\"spectators\":3}}");
            Assert.AreEqual(3, st.Spectators);
            Assert.IsNull(g.JoinedFrame);
            var late = (GameStart)Parse("{\"proto\":\"game_start\",\"data\":{\"room_id\":\"r\",\"start_time\":1,\"frame_interval_ms\":50,\"members\":[\"1\",\"2\"],\"seed\":1,\"checksum_interval\":60,\"joined_frame\":240}}");
            Assert.AreEqual(240, late.JoinedFrame);
            var withLate = (RoomState)Parse("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":4,\"min_players\":2,\"status\":\"playing\",\"members\":[{\"uid\":\"1\",\"ready\":true,\"connected\":true},{\"uid\":\"2\",\"ready\":true,\"connected\":true,\"joined_frame\":240}],\"spectators\":0}}");
            Assert.IsNull(withLate.Members[0].JoinedFrame);
            Assert.AreEqual(240, withLate.Members[1].JoinedFrame);
            Assert.AreEqual(ErrorCode.RoomNotFound, ErrorCodes.Parse("room_not_found"));
        }

        private const string DocFrameData = "{\"frame_count\":0,\"actions\":[{\"uid\":\"1001\",\"extra_data\":{\"timestamp\":1700000000.0,\"action_data\":{\"move\": [0, 1]}}},{\"uid\":\"1001\",\"extra_data\":{\"timestamp\":1700000000.02,\"action_data\":{\"move\":[1,0]}}},{\"uid\":\"1002\",\"extra_data\":{\"timestamp\":1700000000.03,\"action_data\":{\"fire\":true}}}]}";

        [Test]
        public void Doc_sync_frame_keeps_the_bytes()
        {
            var f = (Frame)Parse("{\"proto\":\"sync_frame\",\"data\":" + DocFrameData + "}");
            Assert.AreEqual(0, f.FrameCount);
            Assert.AreEqual(3, f.Actions.Count);
            Assert.AreEqual("1001", f.Actions[0].Uid);
            Assert.AreEqual(1700000000.0, f.Actions[0].Timestamp);
            Assert.AreEqual("{\"move\": [0, 1]}", f.Actions[0].ActionJson, "action_data is relayed byte for byte, spaces kept");
            Assert.AreEqual(1, f.Actions[0].ActionData["move"][1].AsInt64());
            Assert.AreEqual(1700000000.03, f.Actions[2].Timestamp);
            Assert.IsTrue(f.Actions[2].ActionData["fire"].AsBool());
            Assert.AreEqual(DocFrameData, f.RawJson);
            CollectionAssert.AreEqual(Encoding.UTF8.GetBytes(DocFrameData), f.Raw);
        }

        [Test]
        public void Doc_reload_frames_are_the_broadcast_bytes()
        {
            var r = (ReloadChunk)Parse("{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":1,\"end_frame\":3,\"last\":true,\"frames\":[{\"frame_count\":1,\"actions\":[]},{\"frame_count\":2,\"actions\":[]}]}}");
            Assert.AreEqual(1, r.StartFrame);
            Assert.AreEqual(3, r.EndFrame);
            Assert.IsTrue(r.Last);
            Assert.AreEqual(2, r.Frames.Count);
            Assert.AreEqual(2, r.Frames[1].FrameCount);
            Assert.AreEqual("{\"frame_count\":1,\"actions\":[]}", r.Frames[0].RawJson);
            var live = (Frame)Parse("{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[]}}");
            CollectionAssert.AreEqual(live.Raw, r.Frames[0].Raw);
        }

        [Test]
        public void Doc_game_over_pong_and_error()
        {
            var o = (GameOver)Parse("{\"proto\":\"game_over\",\"data\":{\"room_id\":\"race-1\",\"reason\":\"ended_by_room\",\"frame_count\":2,\"results\":{\"scores\":{\"1001\":7,\"1002\":10},\"winner\":\"1002\"}}}");
            Assert.AreEqual("race-1", o.RoomId);
            Assert.AreEqual("ended_by_room", o.Reason);
            Assert.AreEqual(2, o.FrameCount);
            Assert.AreEqual("1002", o.Results["winner"].AsString());
            Assert.AreEqual(10, o.Results["scores"]["1002"].AsInt64());
            Assert.IsTrue(((GameOver)Parse("{\"proto\":\"game_over\",\"data\":{\"room_id\":\"lobby-7\",\"reason\":\"max_duration\",\"frame_count\":144000,\"results\":null}}")).Results.IsNull);

            var p = (Pong)Parse("{\"proto\":\"pong\",\"data\":{\"timestamp\":1700000000.16,\"server_time\":1700000000.17}}");
            Assert.AreEqual(1700000000.16, p.Timestamp);
            Assert.AreEqual(1700000000.17, p.ServerTime);
            Assert.IsNull(((Pong)Parse("{\"proto\":\"pong\",\"data\":{\"timestamp\":null,\"server_time\":1.5}}")).Timestamp);

            var e = (ServerError)Parse("{\"proto\":\"error\",\"data\":{\"code\":\"not_in_room\",\"message\":\"not in a room; send room_enter first\",\"proto\":\"room_leave\"}}");
            Assert.AreEqual(ErrorCode.NotInRoom, e.Code);
            Assert.AreEqual("not_in_room", e.CodeText);
            Assert.AreEqual("room_leave", e.ErrorProto);
            Assert.IsFalse(e.IsFinal);
            var replaced = (ServerError)Parse("{\"proto\":\"error\",\"data\":{\"code\":\"replaced\",\"message\":\"x\",\"proto\":null}}");
            Assert.IsNull(replaced.ErrorProto);
            Assert.IsTrue(replaced.IsFinal);
            var future = (ServerError)Parse("{\"proto\":\"error\",\"data\":{\"code\":\"brand_new\",\"message\":\"x\",\"proto\":null}}");
            Assert.AreEqual(ErrorCode.Unknown, future.Code);
            Assert.AreEqual("brand_new", future.CodeText);
        }

        [Test]
        public void Every_documented_error_code_round_trips()
        {
            string[] codes =
            {
                "frame_too_large", "bad_json", "bad_message", "unknown_proto", "unauthenticated", "bad_token",
                "token_expired", "uid_mismatch", "not_in_room", "already_in_room", "room_full", "room_in_game",
                "too_many_rooms", "game_not_running", "action_rejected", "bad_frame_range", "history_expired",
                "replaced", "session_revoked", "banned", "rate_limited", "too_many_connections", "timeout",
                "limit_exceeded", "shutting_down", "unavailable", "internal",
            };
            foreach (string c in codes)
            {
                ErrorCode code = ErrorCodes.Parse(c);
                Assert.AreNotEqual(ErrorCode.Unknown, code, c);
                Assert.AreEqual(c, ErrorCodes.ToWire(code));
            }
            string[] final = { "replaced", "session_revoked", "banned", "shutting_down", "unauthenticated", "bad_token", "token_expired", "uid_mismatch" };
            foreach (string c in codes)
            {
                Assert.AreEqual(Array.IndexOf(final, c) >= 0, ErrorCodes.IsFinal(ErrorCodes.Parse(c)), c);
            }
        }

        [Test]
        public void Unknown_fields_and_protos_are_ignored_and_field_order_does_not_matter()
        {
            var f = (Frame)Parse("{\"data\":{\"new\":[1,{\"x\":null}],\"actions\":[],\"frame_count\":7},\"extra\":1,\"proto\":\"sync_frame\"}");
            Assert.AreEqual(7, f.FrameCount);
            var u = Parse("{\"proto\":\"spectate\",\"data\":{\"a\":1}}") as UnknownMessage;
            Assert.IsNotNull(u);
            Assert.AreEqual("spectate", u.Proto);
            Assert.AreEqual(RoomStatus.Unknown, ((RoomState)Parse("{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":4,\"min_players\":2,\"status\":\"paused\",\"members\":[]}}")).Status);
        }

        [Test]
        public void Malformed_messages_are_protocol_errors()
        {
            string[] bad =
            {
                "", "{", "[]", "null", "{\"proto\":1}", "{\"data\":{}}", "{\"proto\":\"sync_frame\"}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":-1,\"actions\":[]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":3.0,\"actions\":[]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1e2,\"actions\":[]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":\"1\",\"actions\":[]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":99999999999999999999,\"actions\":[]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":{}}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[{\"uid\":\"1\"}]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[{\"uid\":\"1\",\"extra_data\":{\"timestamp\":1e999,\"action_data\":{}}}]}}",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":1,\"actions\":[]}} x",
                "{\"proto\":\"sync_frame\",\"data\":{\"frame_count\":01,\"actions\":[]}}",
                "{\"proto\":\"pong\",\"data\":{\"timestamp\":null}}",
                "{\"proto\":\"room_state\",\"data\":{\"room_id\":\"r\",\"capacity\":99999999999,\"min_players\":2,\"status\":\"waiting\",\"members\":[]}}",
                "{\"proto\":\"error\",\"data\":{\"code\":\"x\"}}",
                "{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":1,\"end_frame\":3,\"last\":1,\"frames\":[]}}",
                "{\"proto\":\"x\",\"data\":\"\\ud800\"}",
                "{\"proto\":\"x\",\"data\":\"\\udc00\"}",
                "{\"proto\":\"x\",\"data\":\"\\ud800\\u0041\"}",
                "{\"proto\":\"x\",\"data\":\"\\x\"}",
                "{\"proto\":\"x\",\"data\":\"a\nb\"}",
                "{\"proto\":\"x\",\"data\":tru}",
                "{\"proto\":\"x\",\"data\":[1,]}",
                "{\"proto\":\"x\",\"data\":{\"a\" 1}}",
                "{\"proto\":\"x\",\"data\":-}",
                "{\"proto\":\"x\",\"data\":1.}",
                "{\"proto\":\"x\",\"data\":1e}",
            };
            foreach (string json in bad) Assert.AreEqual(ErrorKind.Protocol, Fails(json).Kind, json);
        }

        [Test]
        public void Invalid_utf8_and_deep_nesting_are_protocol_errors()
        {
            byte[] body = Encoding.UTF8.GetBytes("{\"proto\":\"x\",\"data\":\"..\"}");
            body[body.Length - 3] = 0xff;
            Assert.AreEqual(ErrorKind.Protocol, Assert.Throws<MovanException>(() => ServerMessageParser.Parse(body)).Kind);
            body[body.Length - 3] = 0xc3; // a truncated 2-byte sequence
            Assert.AreEqual(ErrorKind.Protocol, Assert.Throws<MovanException>(() => ServerMessageParser.Parse(body)).Kind);
            string deep = "{\"proto\":\"x\",\"data\":" + new string('[', 100000) + new string(']', 100000) + "}";
            Assert.AreEqual(ErrorKind.Protocol, Fails(deep).Kind);
            string ok = "{\"proto\":\"x\",\"data\":" + new string('[', 60) + new string(']', 60) + "}";
            Assert.IsInstanceOf<UnknownMessage>(Parse(ok));
        }

        [Test]
        public void Numbers_read_exactly()
        {
            JsonValue v = JsonValue.Parse("[9223372036854775807,-9223372036854775808,9223372036854775808,-0,0.5,1e2,-2.5E-3,12345678901234567,999999999999999,18446744073709551615,3.0]");
            Assert.AreEqual(long.MaxValue, v[0].AsInt64());
            Assert.AreEqual(long.MinValue, v[1].AsInt64());
            Assert.Throws<InvalidOperationException>(() => v[2].AsInt64());
            Assert.AreEqual(9223372036854775808UL, v[2].AsUInt64());
            Assert.AreEqual(0, v[3].AsInt64());
            Assert.AreEqual(0.0, v[3].AsDouble(), "-0 reads as the runtime's double.Parse reads it");
            Assert.AreEqual(0.5, v[4].AsDouble());
            Assert.AreEqual(100.0, v[5].AsDouble());
            Assert.Throws<InvalidOperationException>(() => v[5].AsInt64(), "1e2 is not written as an integer");
            Assert.AreEqual(-0.0025, v[6].AsDouble());
            Assert.AreEqual(12345678901234568.0, v[7].AsDouble(), "rounded like any JSON parser");
            Assert.AreEqual(999999999999999.0, v[8].AsDouble());
            Assert.AreEqual(ulong.MaxValue, v[9].AsUInt64());
            Assert.Throws<InvalidOperationException>(() => v[10].AsInt64());
            Assert.AreEqual("-2.5E-3", v[6].ToString());
            Assert.AreEqual("[9223372036854775807", v.RawJson.Substring(0, 20));
        }

        [Test]
        public void Escapes_and_unicode_decode()
        {
            var u = (UnknownMessage)Parse("{\"proto\":\"x\",\"data\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 \u4e16\"}");
            Assert.AreEqual("\"\\/\b\f\n\r\t\u00e9\ud83d\ude00 \u4e16", u.Data.AsString());
        }

        private const string Structural = "{}[]\",:0-9.e\\u";

        [Test]
        public void Random_mutations_never_escape_as_anything_but_protocol_errors()
        {
            string[] seeds =
            {
                "{\"proto\":\"sync_frame\",\"data\":" + DocFrameData + "}",
                "{\"proto\":\"reload_frames\",\"data\":{\"start_frame\":1,\"end_frame\":3,\"last\":true,\"frames\":[{\"frame_count\":1,\"actions\":[]},{\"frame_count\":2,\"actions\":[]}]}}",
                "{\"proto\":\"room_state\",\"data\":{\"room_id\":\"lobby-7\",\"capacity\":4,\"min_players\":2,\"status\":\"waiting\",\"members\":[{\"uid\":\"1001\",\"ready\":true,\"connected\":true}]}}",
                "{\"proto\":\"game_start\",\"data\":{\"room_id\":\"lobby-7\",\"start_time\":1700000000.0,\"frame_interval_ms\":50,\"members\":[\"1001\",\"1002\"],\"seed\":3543144545}}",
                "{\"proto\":\"desync\",\"data\":{\"frame\":60,\"groups\":[{\"hash\":\"9f\",\"uids\":[\"1001\"]},{\"hash\":\"01\",\"uids\":[\"1004\"]}],\"majority\":null}}",
            };
            var rng = new Random(2024);
            int parsed = 0, refused = 0;
            for (int i = 0; i < 20000; i++)
            {
                byte[] b = Encoding.UTF8.GetBytes(seeds[i % seeds.Length]);
                int edits = rng.Next(1, 4);
                for (int e = 0; e < edits; e++)
                {
                    int at = rng.Next(b.Length);
                    switch (rng.Next(3))
                    {
                        case 0: b[at] = (byte)rng.Next(256); break;
                        case 1: Array.Resize(ref b, at); break;
                        default: b[at] = (byte)Structural[rng.Next(Structural.Length)]; break;
                    }
                    if (b.Length == 0) break;
                }
                try
                {
                    ServerMessageParser.Parse(b);
                    parsed++;
                }
                catch (MovanException ex)
                {
                    Assert.AreEqual(ErrorKind.Protocol, ex.Kind);
                    refused++;
                }
            }
            Assert.That(refused, Is.GreaterThan(1000));
            Assert.That(parsed, Is.GreaterThan(100), "some mutations stay valid (digits, unknown fields)");
        }

        // ---- client messages ----

        [Test]
        public void Doc_client_envelopes()
        {
            Assert.AreEqual("{\"uid\":\"1001\",\"token\":\"eyJ.x.y\",\"extra_data\":{\"proto\":\"room_enter\",\"timestamp\":1700000000,\"data\":{\"room_id\":\"lobby-7\"}}}",
                Encoding.UTF8.GetString(ClientMessages.Envelope("1001", "eyJ.x.y", "room_enter", 1700000000.0, ClientMessages.RoomEnterData("lobby-7"), null)));
            Assert.AreEqual("{\"uid\":\"1001\",\"extra_data\":{\"proto\":\"sync_action\",\"timestamp\":1700000000.12,\"action_data\":{\"move\":[1,0]}}}",
                Encoding.UTF8.GetString(ClientMessages.Envelope("1001", null, "sync_action", 1700000000.12, null, ClientMessages.CheckAction("{\"move\":[1,0]}"))));
            Assert.AreEqual("{\"uid\":\"1001\",\"extra_data\":{\"proto\":\"sync_request_reload_frames\",\"data\":{\"start_frame\":120}}}",
                Encoding.UTF8.GetString(ClientMessages.Envelope("1001", null, ClientMessages.ReloadProto, null, ClientMessages.ReloadData(120), null)));
            Assert.AreEqual("{\"uid\":\"1001\",\"extra_data\":{\"proto\":\"room_enter\"}}",
                Encoding.UTF8.GetString(ClientMessages.Envelope("1001", null, "room_enter", null, ClientMessages.RoomEnterData(null), null)));
        }

        [Test]
        public void Envelopes_escape_strings_and_keep_timestamps_exact()
        {
            byte[] body = ClientMessages.Envelope("a\"b\\c\n\u0001\u00e9", null, "ping", 1700000000.123456, null, null);
            JsonValue v = JsonValue.Parse(body);
            Assert.AreEqual("a\"b\\c\n\u0001\u00e9", v["uid"].AsString());
            Assert.AreEqual(1700000000.123456, v["extra_data"]["timestamp"].AsDouble());
            Assert.Throws<ArgumentException>(() => ClientMessages.Envelope("\ud800", null, "ping", null, null, null));
            Assert.Throws<ArgumentException>(() => ClientMessages.Envelope("1", null, "ping", double.NaN, null, null));
        }

        [Test]
        public void Actions_must_be_json_objects_that_cannot_break_the_envelope()
        {
            Assert.AreEqual("{\"a\": [1, {\"b\": null}]}", ClientMessages.CheckAction("{\"a\": [1, {\"b\": null}]}"));
            string[] bad = { "[]", "1", "\"s\"", "{}}", "{\"a\":1},\"x\":{", "{", "", "{} {}", "{\"a\":\"\\ud800\"}" };
            foreach (string s in bad) Assert.Throws<ArgumentException>(() => ClientMessages.CheckAction(s), s);
            string depth32 = new string('[', 31);
            Assert.DoesNotThrow(() => ClientMessages.CheckAction("{\"a\":" + depth32 + new string(']', 31) + "}"));
            Assert.Throws<ArgumentException>(() => ClientMessages.CheckAction("{\"a\":" + depth32 + "[]" + new string(']', 31) + "}"));
        }

        [Test]
        public void Built_actions_serialize_compactly()
        {
            JsonValue a = JsonValue.NewObject()
                .Add("move", JsonValue.NewArray().Add(JsonValue.From(1)).Add(JsonValue.From(-0.5)))
                .Add("name", "x\"y")
                .Add("fire", true)
                .Add("none", (JsonValue)null);
            Assert.AreEqual("{\"move\":[1,-0.5],\"name\":\"x\\\"y\",\"fire\":true,\"none\":null}", ClientMessages.ActionJson(a));
            Assert.Throws<ArgumentException>(() => ClientMessages.ActionJson(JsonValue.NewArray()));
            Assert.Throws<ArgumentException>(() => JsonValue.From(double.PositiveInfinity));
        }
    }
}

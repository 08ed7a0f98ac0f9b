using System;
using System.Collections.Generic;

namespace Movan.Client
{
    /// <summary>Parses server message bodies (plaintext JSON) into typed <see cref="ServerMessage"/>s.</summary>
    /// <remarks>
    /// Unknown fields are ignored and unknown protos come back as <see cref="UnknownMessage"/>, so newer servers stay
    /// readable. Anything else malformed (not UTF-8 JSON, a missing field, a wrong type, a negative frame number)
    /// fails with <see cref="MovanException"/> of kind <see cref="ErrorKind.Protocol"/>: the server broke the contract.
    /// </remarks>
    public static class ServerMessageParser
    {
        /// <summary>Parses one body (the whole array).</summary>
        public static ServerMessage Parse(byte[] body)
        {
            return Parse(body, 0, body.Length);
        }

        /// <summary>Parses one body of <paramref name="count"/> bytes at <paramref name="offset"/>.</summary>
        public static ServerMessage Parse(byte[] body, int offset, int count)
        {
            JsonValue root = Root(body, offset, count);
            string proto = "message";
            try
            {
                proto = Str(root, "proto");
                JsonValue data = root["data"] ?? JsonValue.Null;
                switch (proto)
                {
                    case "sync_frame": return ParseFrame(data);
                    case "reload_frames": return ParseReload(data);
                    case "room_state": return ParseRoomState(data);
                    case "room_left":
                        return new RoomLeft
                        {
                            RoomId = Str(data, "room_id"),
                            Reason = OptStr(data, "reason"),
                            Message = OptStr(data, "message"),
                        };
                    case "game_start": return ParseGameStart(data);
                    case "game_over": return ParseGameOver(data);
                    case "pong": return ParsePong(data);
                    case "desync": return ParseDesync(data);
                    case "error": return ParseError(data);
                    case "handshake": return ParseHandshakeData(data);
                    default: return new UnknownMessage(proto, data);
                }
            }
            catch (InvalidOperationException e)
            {
                throw Malformed(proto + ": " + e.Message);
            }
            catch (OverflowException e)
            {
                throw Malformed(proto + ": " + e.Message);
            }
        }

        /// <summary>
        /// Parses the server's first frame: a <see cref="Handshake"/>, or the <see cref="ServerError"/> refusing the
        /// first message. A salt that is not base64 of 32 bytes, or an unknown cipher, fails with
        /// <see cref="ErrorKind.Crypto"/>; any other proto too (a server without encrypted sessions?).
        /// </summary>
        public static ServerMessage ParseFirst(byte[] body)
        {
            ServerMessage m;
            try
            {
                m = Parse(body);
            }
            catch (MovanException e)
            {
                if (e.Kind == ErrorKind.Crypto) throw;
                throw new MovanException(ErrorKind.Crypto, "malformed handshake: " + e.Message);
            }
            if (m is ServerError || m is Handshake) return m;
            throw new MovanException(ErrorKind.Crypto,
                "expected the server's handshake, got \"" + m.Proto + "\" (a server without encrypted sessions?)");
        }

        private static JsonValue Root(byte[] body, int offset, int count)
        {
            JsonValue root;
            try
            {
                root = JsonValue.Parse(body, offset, count);
            }
            catch (FormatException e)
            {
                throw Malformed(e.Message);
            }
            if (root.Kind != JsonKind.Object) throw Malformed("not a JSON object");
            return root;
        }

        private static Frame ParseFrame(JsonValue data)
        {
            if (data.Kind != JsonKind.Object) throw new InvalidOperationException("data is not an object");
            long n = Frame(data, "frame_count");
            JsonValue actions = Field(data, "actions");
            if (actions.Kind != JsonKind.Array) throw new InvalidOperationException("actions is not an array");
            var list = new FrameAction[actions.Count];
            for (int i = 0; i < list.Length; i++)
            {
                JsonValue a = actions[i];
                JsonValue extra = Field(a, "extra_data");
                JsonValue actionData = Field(extra, "action_data");
                list[i] = new FrameAction(Str(a, "uid"), Field(extra, "timestamp").AsDouble(), actionData);
            }
            return new Frame(n, list, data);
        }

        private static ReloadChunk ParseReload(JsonValue data)
        {
            JsonValue frames = Field(data, "frames");
            if (frames.Kind != JsonKind.Array) throw new InvalidOperationException("frames is not an array");
            var list = new Frame[frames.Count];
            for (int i = 0; i < list.Length; i++) list[i] = ParseFrame(frames[i]);
            return new ReloadChunk
            {
                StartFrame = Frame(data, "start_frame"),
                EndFrame = Frame(data, "end_frame"),
                Last = Field(data, "last").AsBool(),
                Frames = list,
            };
        }

        private static RoomState ParseRoomState(JsonValue data)
        {
            JsonValue members = Field(data, "members");
            var list = new RoomMember[members.Count];
            for (int i = 0; i < list.Length; i++)
            {
                JsonValue m = members[i];
                list[i] = new RoomMember(Str(m, "uid"), Field(m, "ready").AsBool(), Field(m, "connected").AsBool())
                {
                    JoinedFrame = OptFrame(m, "joined_frame"),
                };
            }
            string status = Str(data, "status");
            return new RoomState
            {
                RoomId = Str(data, "room_id"),
                Capacity = checked((int)Field(data, "capacity").AsInt64()),
                MinPlayers = checked((int)Field(data, "min_players").AsInt64()),
                Status = status == "waiting" ? RoomStatus.Waiting
                    : status == "playing" ? RoomStatus.Playing : RoomStatus.Unknown,
                Members = list,
                Spectators = data["spectators"] == null ? 0 : checked((int)Field(data, "spectators").AsInt64()),
            };
        }

        private static GameStart ParseGameStart(JsonValue data)
        {
            JsonValue members = Field(data, "members");
            if (members.Kind != JsonKind.Array) throw new InvalidOperationException("members is not an array");
            var list = new string[members.Count];
            for (int i = 0; i < list.Length; i++) list[i] = members[i].AsString();
            ulong seed = Field(data, "seed").AsUInt64();
            if (seed > uint.MaxValue) throw new InvalidOperationException("seed is not a u32");
            return new GameStart
            {
                RoomId = Str(data, "room_id"),
                StartTime = Field(data, "start_time").AsDouble(),
                FrameIntervalMs = Field(data, "frame_interval_ms").AsInt64(),
                Members = list,
                Seed = (uint)seed,
                ChecksumInterval = data["checksum_interval"] == null ? 0 : Frame(data, "checksum_interval"),
                JoinedFrame = OptFrame(data, "joined_frame"),
            };
        }

        private static Desync ParseDesync(JsonValue data)
        {
            JsonValue groups = Field(data, "groups");
            if (groups.Kind != JsonKind.Array) throw new InvalidOperationException("groups is not an array");
            var list = new HashGroup[groups.Count];
            for (int i = 0; i < list.Length; i++)
            {
                JsonValue uids = Field(groups[i], "uids");
                if (uids.Kind != JsonKind.Array) throw new InvalidOperationException("uids is not an array");
                var names = new string[uids.Count];
                for (int j = 0; j < names.Length; j++) names[j] = uids[j].AsString();
                list[i] = new HashGroup(Str(groups[i], "hash"), names);
            }
            return new Desync { Frame = Frame(data, "frame"), Groups = list, Majority = OptStr(data, "majority") };
        }

        private static GameOver ParseGameOver(JsonValue data)
        {
            return new GameOver
            {
                RoomId = Str(data, "room_id"),
                Reason = Str(data, "reason"),
                FrameCount = Frame(data, "frame_count"),
                Results = data["results"] ?? JsonValue.Null,
            };
        }

        private static Pong ParsePong(JsonValue data)
        {
            JsonValue ts = data["timestamp"];
            return new Pong
            {
                Timestamp = ts == null || ts.IsNull ? (double?)null : ts.AsDouble(),
                ServerTime = Field(data, "server_time").AsDouble(),
            };
        }

        private static ServerError ParseError(JsonValue data)
        {
            JsonValue proto = data["proto"];
            return new ServerError(Str(data, "code"), Str(data, "message"),
                proto == null || proto.IsNull ? null : proto.AsString());
        }

        private static Handshake ParseHandshakeData(JsonValue data)
        {
            string cipher = Str(data, "cipher");
            if (cipher == "none") return new Handshake { Cipher = cipher };
            if (cipher != SessionCrypto.Cipher)
            {
                throw new MovanException(ErrorKind.Crypto, "the server's handshake names an unknown cipher \"" + cipher + "\"");
            }
            JsonValue salt = data["salt"];
            if (salt == null || salt.Kind != JsonKind.String)
            {
                throw new MovanException(ErrorKind.Crypto, "the server's handshake has no salt");
            }
            return new Handshake { Cipher = cipher, Salt = SessionCrypto.DecodeKey(salt.AsString(), "handshake salt") };
        }

        private static JsonValue Field(JsonValue obj, string name)
        {
            if (obj.Kind != JsonKind.Object) throw new InvalidOperationException("expected an object holding " + name);
            JsonValue v = obj[name];
            if (v == null) throw new InvalidOperationException("missing field " + name);
            return v;
        }

        private static string Str(JsonValue obj, string name)
        {
            JsonValue v = Field(obj, name);
            if (v.Kind != JsonKind.String) throw new InvalidOperationException(name + " is not a string");
            return v.AsString();
        }

        /// <summary>A string field that may be absent or null.</summary>
        private static string OptStr(JsonValue obj, string name)
        {
            if (obj.Kind != JsonKind.Object) throw new InvalidOperationException("expected an object holding " + name);
            JsonValue v = obj[name];
            if (v == null || v.Kind == JsonKind.Null) return null;
            if (v.Kind != JsonKind.String) throw new InvalidOperationException(name + " is not a string");
            return v.AsString();
        }

        /// <summary>A frame number that may be absent or null.</summary>
        private static long? OptFrame(JsonValue obj, string name)
        {
            JsonValue v = obj[name];
            if (v == null || v.Kind == JsonKind.Null) return null;
            return Frame(obj, name);
        }

        private static long Frame(JsonValue obj, string name)
        {
            long n = Field(obj, name).AsInt64();
            if (n < 0) throw new InvalidOperationException(name + " is negative");
            return n;
        }

        private static MovanException Malformed(string why)
        {
            return new MovanException(ErrorKind.Protocol, "malformed server message: " + why);
        }
    }
}

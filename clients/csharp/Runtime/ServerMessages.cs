using System;
using System.Collections.Generic;

namespace Movan.Client
{
    /// <summary>
    /// Anything the sync server sends: <c>{"proto":"...","data":...}</c> (docs/protocol.md §5). Parse one body with
    /// <see cref="ServerMessageParser.Parse(byte[])"/>; switch on the type (<see cref="Frame"/>, <see cref="RoomState"/>, ...).
    /// </summary>
    public abstract class ServerMessage
    {
        /// <summary>The message's <c>proto</c>.</summary>
        public abstract string Proto { get; }
    }

    /// <summary>A room's status.</summary>
    public enum RoomStatus
    {
        Waiting,
        Playing,
        /// <summary>A status this SDK does not know (a newer server).</summary>
        Unknown,
    }

    /// <summary>One member in <see cref="RoomState"/>.</summary>
    public sealed class RoomMember
    {
        public RoomMember(string uid, bool ready, bool connected)
        {
            Uid = uid;
            Ready = ready;
            Connected = connected;
        }

        /// <summary>The member's uid.</summary>
        public string Uid { get; private set; }
        /// <summary>Whether it sent <c>room_prepare</c>.</summary>
        public bool Ready { get; private set; }
        /// <summary>False while its connection is down and its seat is kept for the reconnect grace.</summary>
        public bool Connected { get; private set; }
        /// <summary>For a player who joined the running game: the first frame it played; otherwise null.</summary>
        public long? JoinedFrame { get; internal set; }
    }

    /// <summary><c>room_state</c>: the room after every join, leave, readiness change, drop and start.</summary>
    public sealed class RoomState : ServerMessage
    {
        public override string Proto { get { return "room_state"; } }
        /// <summary>The room.</summary>
        public string RoomId { get; internal set; }
        /// <summary>Seats.</summary>
        public int Capacity { get; internal set; }
        /// <summary>Players needed to start.</summary>
        public int MinPlayers { get; internal set; }
        /// <summary><c>waiting</c> or <c>playing</c>.</summary>
        public RoomStatus Status { get; internal set; }
        /// <summary>Members in join order.</summary>
        public IReadOnlyList<RoomMember> Members { get; internal set; }
        /// <summary>Spectators watching the room (not members).</summary>
        public int Spectators { get; internal set; }
    }

    /// <summary><c>room_left</c>: the answer to <c>room_leave</c>, or the server closed the waiting room; nothing of
    /// the room follows on this connection.</summary>
    public sealed class RoomLeft : ServerMessage
    {
        /// <summary><see cref="Reason"/> when the room waited <c>sync.waiting_room_timeout_secs</c> and was closed.</summary>
        public const string WaitingRoomTimeout = "waiting_room_timeout";
        /// <summary><see cref="Reason"/> when this player's checksum disagreed with the majority's and the room
        /// dropped the minority (see <see cref="Desync"/>).</summary>
        public const string DesyncReason = "desync";
        public override string Proto { get { return "room_left"; } }
        /// <summary>The room the player left.</summary>
        public string RoomId { get; internal set; }
        /// <summary>Null when the player asked (<c>room_leave</c>); otherwise why the server took it out.</summary>
        public string Reason { get; internal set; }
        /// <summary>With a reason: a human-readable explanation; do not parse it.</summary>
        public string Message { get; internal set; }
    }

    /// <summary><c>game_start</c>: the game begins; frames count from 0.</summary>
    public sealed class GameStart : ServerMessage
    {
        public override string Proto { get { return "game_start"; } }
        /// <summary>The room.</summary>
        public string RoomId { get; internal set; }
        /// <summary>Server time of the start, Unix seconds.</summary>
        public double StartTime { get; internal set; }
        /// <summary>Milliseconds between frames.</summary>
        public long FrameIntervalMs { get; internal set; }
        /// <summary>The players, in join order: use it for player slots.</summary>
        public IReadOnlyList<string> Members { get; internal set; }
        /// <summary>The same random u32 for every player: seed your game's RNG with it.</summary>
        public uint Seed { get; internal set; }
        /// <summary>Send <c>sync_checksum</c> (<see cref="GameSession.SendChecksum"/>) for every frame that is a
        /// multiple of this; 0 = the server compares none.</summary>
        public long ChecksumInterval { get; internal set; }
        /// <summary>Only for a late joiner: the first frame it plays (the history before it follows as a reload);
        /// otherwise null.</summary>
        public long? JoinedFrame { get; internal set; }
    }

    /// <summary>Players who reported the same hash for a frame (one group of a <see cref="Desync"/>).</summary>
    public sealed class HashGroup
    {
        internal HashGroup(string hash, IReadOnlyList<string> uids)
        {
            Hash = hash;
            Uids = uids;
        }

        /// <summary>The hash they reported.</summary>
        public string Hash { get; private set; }
        /// <summary>Who reported it, sorted.</summary>
        public IReadOnlyList<string> Uids { get; private set; }
    }

    /// <summary><c>desync</c>: the players' checksums for <see cref="Frame"/> disagree.</summary>
    public sealed class Desync : ServerMessage
    {
        public override string Proto { get { return "desync"; } }
        /// <summary>The frame whose hashes differ.</summary>
        public long Frame { get; internal set; }
        /// <summary>Every distinct hash, the largest group first.</summary>
        public IReadOnlyList<HashGroup> Groups { get; internal set; }
        /// <summary>The largest group's hash when it is larger than every other, else null (a tie). Players
        /// outside it diverged.</summary>
        public string Majority { get; internal set; }

        /// <summary>Whether <paramref name="uid"/> is outside the majority group (false when there is none).</summary>
        public bool Diverged(string uid)
        {
            if (Majority == null) return false;
            foreach (HashGroup g in Groups)
            {
                if (g.Hash == Majority) continue;
                foreach (string u in g.Uids)
                {
                    if (u == uid) return true;
                }
            }
            return false;
        }
    }

    /// <summary>One action inside a <see cref="Frame"/>.</summary>
    public sealed class FrameAction
    {
        internal FrameAction(string uid, double timestamp, JsonValue actionData)
        {
            Uid = uid;
            Timestamp = timestamp;
            ActionData = actionData;
        }

        /// <summary>Who sent it.</summary>
        public string Uid { get; private set; }
        /// <summary>The (clamped) timestamp it was ordered by; identical for every client.</summary>
        public double Timestamp { get; private set; }
        /// <summary>The action object, parsed; <see cref="JsonValue.RawJson"/> gives it byte for byte as sent.</summary>
        public JsonValue ActionData { get; private set; }
        /// <summary>The action object's JSON text, exactly as its sender wrote it.</summary>
        public string ActionJson { get { return ActionData.RawJson; } }
    }

    /// <summary>
    /// A <c>sync_frame</c>, or a frame inside <c>reload_frames</c>. Two frames with the same <see cref="FrameCount"/>
    /// have the same <see cref="Raw"/> bytes, for every player.
    /// </summary>
    public sealed class Frame : ServerMessage
    {
        private readonly JsonValue data;

        internal Frame(long frameCount, IReadOnlyList<FrameAction> actions, JsonValue data)
        {
            FrameCount = frameCount;
            Actions = actions;
            this.data = data;
        }

        public override string Proto { get { return "sync_frame"; } }
        /// <summary>The frame number: 0, 1, 2, ...</summary>
        public long FrameCount { get; private set; }
        /// <summary>The actions in their final order; apply them in this order.</summary>
        public IReadOnlyList<FrameAction> Actions { get; private set; }
        /// <summary>The frame object (the <c>data</c> of its <c>sync_frame</c>) byte for byte as the server sent it.</summary>
        public byte[] Raw { get { return data.RawBytes(); } }
        /// <summary><see cref="Raw"/> as text.</summary>
        public string RawJson { get { return data.RawJson; } }
    }

    /// <summary>One chunk of <c>reload_frames</c>, the answer to <c>sync_request_reload_frames</c>.</summary>
    public sealed class ReloadChunk : ServerMessage
    {
        public override string Proto { get { return "reload_frames"; } }
        /// <summary>The first frame of this chunk (the requested start for an empty chunk).</summary>
        public long StartFrame { get; internal set; }
        /// <summary>The reload covers frames up to but not including this one.</summary>
        public long EndFrame { get; internal set; }
        /// <summary>True on the final chunk.</summary>
        public bool Last { get; internal set; }
        /// <summary>Consecutive frames.</summary>
        public IReadOnlyList<Frame> Frames { get; internal set; }
    }

    /// <summary><c>game_over</c>: the game ended; the room is gone and its members are in no room.</summary>
    public sealed class GameOver : ServerMessage
    {
        public override string Proto { get { return "game_over"; } }
        /// <summary>The room.</summary>
        public string RoomId { get; internal set; }
        /// <summary><c>all_left</c>, <c>max_duration</c>, <c>ended_by_room</c>, <c>shutdown</c>, <c>desync</c> or <c>ended_by_admin</c>.</summary>
        public string Reason { get; internal set; }
        /// <summary>Frames broadcast; the last was <c>FrameCount - 1</c>.</summary>
        public long FrameCount { get; internal set; }
        /// <summary>What a custom room set, or JSON null.</summary>
        public JsonValue Results { get; internal set; }
    }

    /// <summary><c>pong</c>: the answer to <c>ping</c>.</summary>
    public sealed class Pong : ServerMessage
    {
        public override string Proto { get { return "pong"; } }
        /// <summary>The ping's timestamp, echoed (null when it had none).</summary>
        public double? Timestamp { get; internal set; }
        /// <summary>The server's clock when it handled the ping, Unix seconds.</summary>
        public double ServerTime { get; internal set; }
        /// <summary>Local Unix time when the connection read it (0 when parsed on its own).</summary>
        public double ReceivedAt { get; internal set; }
        /// <summary>Round trip in seconds, when the ping carried a timestamp.</summary>
        public double? RoundTrip
        {
            get { return Timestamp.HasValue && ReceivedAt > 0 ? ReceivedAt - Timestamp.Value : (double?)null; }
        }
        /// <summary>server_time − the round trip's midpoint: add it to the local clock to stamp actions in server time (docs/protocol.md §10).</summary>
        public double? ClockOffset
        {
            get
            {
                return Timestamp.HasValue && ReceivedAt > 0
                    ? ServerTime - (Timestamp.Value + ReceivedAt) / 2 : (double?)null;
            }
        }
    }

    /// <summary><c>error</c>: a request failed, or the server is about to close (docs/protocol.md §8).</summary>
    public sealed class ServerError : ServerMessage
    {
        public ServerError(string code, string message, string proto)
        {
            CodeText = code ?? "";
            Code = ErrorCodes.Parse(CodeText);
            Message = message ?? "";
            ErrorProto = proto;
        }

        public override string Proto { get { return "error"; } }
        /// <summary>The code, parsed (<see cref="ErrorCode.Unknown"/> for a code newer than this SDK).</summary>
        public ErrorCode Code { get; private set; }
        /// <summary>The code as sent.</summary>
        public string CodeText { get; private set; }
        /// <summary>For humans; never parse it.</summary>
        public string Message { get; private set; }
        /// <summary>The proto of the failed request, or null.</summary>
        public string ErrorProto { get; private set; }
        /// <summary>True when the server closes after this error on purpose: do not reconnect (<see cref="ErrorCodes.IsFinal"/>).</summary>
        public bool IsFinal { get { return ErrorCodes.IsFinal(Code); } }

        public override string ToString()
        {
            return CodeText + ": " + Message + (ErrorProto != null ? " (" + ErrorProto + ")" : "");
        }
    }

    /// <summary>The server's first frame after an accepted first message (docs/encryption.md §2).</summary>
    public sealed class Handshake : ServerMessage
    {
        public override string Proto { get { return "handshake"; } }
        /// <summary><c>chacha20poly1305</c>, or <c>none</c> when the server runs with <c>encryption = "off"</c>.</summary>
        public string Cipher { get; internal set; }
        /// <summary>The connection's 32-byte salt; null for <c>none</c>.</summary>
        public byte[] Salt { get; internal set; }
        /// <summary>True when every later frame is sealed.</summary>
        public bool Sealed { get { return Cipher == SessionCrypto.Cipher; } }
    }

    /// <summary>A proto this SDK does not know (a newer server); ignore it.</summary>
    public sealed class UnknownMessage : ServerMessage
    {
        private readonly string proto;

        internal UnknownMessage(string proto, JsonValue data)
        {
            this.proto = proto;
            Data = data;
        }

        public override string Proto { get { return proto; } }
        /// <summary>Its <c>data</c>.</summary>
        public JsonValue Data { get; private set; }
    }
}

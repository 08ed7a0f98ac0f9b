using System;

namespace Movan.Client
{
    /// <summary>The sync server's error codes (docs/protocol.md §8); <see cref="Unknown"/> for a code this SDK does not know.</summary>
    public enum ErrorCode
    {
        Unknown,
        FrameTooLarge,
        BadJson,
        BadMessage,
        UnknownProto,
        Unauthenticated,
        BadToken,
        TokenExpired,
        UidMismatch,
        NotInRoom,
        AlreadyInRoom,
        RoomFull,
        RoomInGame,
        TooManyRooms,
        GameNotRunning,
        ActionRejected,
        BadFrameRange,
        HistoryExpired,
        Replaced,
        SessionRevoked,
        Banned,
        LimitExceeded,
        RateLimited,
        TooManyConnections,
        Timeout,
        ShuttingDown,
        Unavailable,
        Internal,
        RoomNotFound,
        Kicked,
    }

    /// <summary>Conversions between <see cref="ErrorCode"/> and the wire text, and what a code means for reconnecting.</summary>
    public static class ErrorCodes
    {
        private static readonly string[] Wire =
        {
            "", "frame_too_large", "bad_json", "bad_message", "unknown_proto", "unauthenticated", "bad_token",
            "token_expired", "uid_mismatch", "not_in_room", "already_in_room", "room_full", "room_in_game",
            "too_many_rooms", "game_not_running", "action_rejected", "bad_frame_range", "history_expired", "replaced",
            "session_revoked", "banned", "limit_exceeded", "rate_limited", "too_many_connections", "timeout",
            "shutting_down", "unavailable", "internal", "room_not_found", "kicked",
        };

        /// <summary>The code for its wire text; <see cref="ErrorCode.Unknown"/> for anything else (newer servers may add codes).</summary>
        public static ErrorCode Parse(string wire)
        {
            if (string.IsNullOrEmpty(wire)) return ErrorCode.Unknown;
            for (int i = 1; i < Wire.Length; i++)
            {
                if (Wire[i] == wire) return (ErrorCode)i;
            }
            return ErrorCode.Unknown;
        }

        /// <summary>The wire text of a code ("" for <see cref="ErrorCode.Unknown"/>).</summary>
        public static string ToWire(ErrorCode code)
        {
            int i = (int)code;
            return i >= 0 && i < Wire.Length ? Wire[i] : "";
        }

        /// <summary>
        /// True for the codes after which the server closes on purpose and a reconnect would be refused or would undo
        /// the user's intent: <c>replaced</c>, <c>session_revoked</c>, <c>banned</c>, <c>shutting_down</c> and the
        /// token and uid errors. A <see cref="GameSession"/> never reconnects after one of them.
        /// </summary>
        public static bool IsFinal(ErrorCode code)
        {
            switch (code)
            {
                case ErrorCode.Replaced:
                case ErrorCode.Kicked:
                case ErrorCode.SessionRevoked:
                case ErrorCode.Banned:
                case ErrorCode.ShuttingDown:
                case ErrorCode.Unauthenticated:
                case ErrorCode.BadToken:
                case ErrorCode.TokenExpired:
                case ErrorCode.UidMismatch:
                    return true;
                default:
                    return false;
            }
        }
    }

    /// <summary>Where a <see cref="MovanException"/> comes from.</summary>
    public enum ErrorKind
    {
        /// <summary>The sync server sent an <c>error</c>: see <see cref="MovanException.Code"/> and <see cref="MovanException.SyncCode"/>.</summary>
        Server,
        /// <summary>The account server answered with an error status: see <see cref="MovanException.HttpStatus"/> and <see cref="MovanException.Code"/>.</summary>
        Http,
        /// <summary>A socket or HTTP request could not be made, or failed midway.</summary>
        Network,
        /// <summary>The expected answer did not arrive in time.</summary>
        Timeout,
        /// <summary>The connection or session is closed (or reconnecting): nothing can be sent.</summary>
        Closed,
        /// <summary>The encrypted session failed (bad tag, bad handshake, bad session key): fatal for the connection.</summary>
        Crypto,
        /// <summary>The server broke the protocol (unparsable message, frame above the limit, reload out of order).</summary>
        Protocol,
        /// <summary>A message is larger than the server accepts (<c>sync.max_frame_bytes</c>); it was not sent.</summary>
        TooLarge,
        /// <summary>Too many messages wait to be written; this one was not sent. Send less often.</summary>
        QueueFull,
    }

    /// <summary>
    /// The one exception type of the SDK. Sync server errors carry the protocol code (<see cref="SyncCode"/>, and its
    /// wire text in <see cref="Code"/>); account server errors the HTTP status and the body's code.
    /// </summary>
    public class MovanException : Exception
    {
        /// <summary>A client-side failure of <paramref name="kind"/>.</summary>
        public MovanException(ErrorKind kind, string message, Exception inner = null)
            : base(message, inner)
        {
            Kind = kind;
            Code = KindCode(kind);
            SyncCode = ErrorCode.Unknown;
        }

        private MovanException(ErrorKind kind, string code, string message, Exception inner)
            : base(message, inner)
        {
            Kind = kind;
            Code = code ?? "";
            SyncCode = ErrorCode.Unknown;
        }

        /// <summary>An <c>error</c> the sync server sent.</summary>
        public static MovanException FromServer(ServerError e)
        {
            var ex = new MovanException(ErrorKind.Server, e.CodeText,
                string.IsNullOrEmpty(e.Message) ? "sync server error " + e.CodeText : e.Message, null);
            ex.SyncCode = e.Code;
            ex.Proto = e.ErrorProto;
            return ex;
        }

        /// <summary>An error status from the account server.</summary>
        public static MovanException FromHttp(int status, string code, string message, TimeSpan? retryAfter)
        {
            var ex = new MovanException(ErrorKind.Http, code, "http " + status + " " + code + ": " + message, null);
            ex.HttpStatus = status;
            ex.RetryAfter = retryAfter;
            return ex;
        }

        /// <summary>Where the error comes from.</summary>
        public ErrorKind Kind { get; private set; }

        /// <summary>
        /// Machine-readable: the sync server's code (<c>room_full</c>), the account server's code
        /// (<c>invalid_credentials</c>), or for client-side failures the kind in snake case (<c>network</c>,
        /// <c>timeout</c>, <c>closed</c>, <c>crypto</c>, <c>protocol</c>, <c>too_large</c>, <c>queue_full</c>).
        /// </summary>
        public string Code { get; private set; }

        /// <summary>The parsed sync server code of a <see cref="ErrorKind.Server"/> error, else <see cref="ErrorCode.Unknown"/>.</summary>
        public ErrorCode SyncCode { get; private set; }

        /// <summary>The proto of the failed request, when the sync server named it.</summary>
        public string Proto { get; private set; }

        /// <summary>The HTTP status of an <see cref="ErrorKind.Http"/> error, else 0.</summary>
        public int HttpStatus { get; private set; }

        /// <summary>How long to wait before retrying, from <c>Retry-After</c> on a 429 or 503.</summary>
        public TimeSpan? RetryAfter { get; private set; }

        private static string KindCode(ErrorKind kind)
        {
            switch (kind)
            {
                case ErrorKind.Network: return "network";
                case ErrorKind.Timeout: return "timeout";
                case ErrorKind.Closed: return "closed";
                case ErrorKind.Crypto: return "crypto";
                case ErrorKind.Protocol: return "protocol";
                case ErrorKind.TooLarge: return "too_large";
                case ErrorKind.QueueFull: return "queue_full";
                default: return "";
            }
        }
    }
}

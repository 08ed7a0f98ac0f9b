using System;
using System.Globalization;
using System.Text;

namespace Movan.Client
{
    /// <summary>
    /// Builds the bodies of client messages (docs/protocol.md §4):
    /// <c>{"uid":...,"token":...,"extra_data":{"proto":...,"timestamp":...,"data":...,"action_data":...}}</c>.
    /// </summary>
    public static class ClientMessages
    {
        /// <summary>The proto of a reload request.</summary>
        public const string ReloadProto = "sync_request_reload_frames";
        public const string SpectateProto = "room_spectate";
        /// <summary>The deepest <c>action_data</c> the server accepts (objects and arrays both count).</summary>
        public const int MaxActionDepth = 32;

        /// <summary>
        /// One message body as UTF-8. <paramref name="token"/> only on a connection's first message;
        /// <paramref name="dataJson"/> and <paramref name="actionJson"/> are JSON text inserted verbatim (already checked by the caller).
        /// </summary>
        public static byte[] Envelope(string uid, string token, string proto, double? timestamp, string dataJson,
            string actionJson)
        {
            var sb = new StringBuilder(96 + (actionJson == null ? 0 : actionJson.Length));
            sb.Append("{\"uid\":");
            JsonWriter.WriteString(sb, uid);
            if (token != null)
            {
                sb.Append(",\"token\":");
                JsonWriter.WriteString(sb, token);
            }
            sb.Append(",\"extra_data\":{\"proto\":");
            JsonWriter.WriteString(sb, proto);
            if (timestamp.HasValue)
            {
                sb.Append(",\"timestamp\":").Append(JsonWriter.FormatNumber(timestamp.Value));
            }
            if (dataJson != null) sb.Append(",\"data\":").Append(dataJson);
            if (actionJson != null) sb.Append(",\"action_data\":").Append(actionJson);
            sb.Append("}}");
            try
            {
                return JsonWriter.StrictUtf8.GetBytes(sb.ToString());
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException("a message string is not valid Unicode (a lone surrogate?)", e);
            }
        }

        /// <summary><c>room_enter</c> data: the room, or null (quick match).</summary>
        public static string RoomEnterData(string roomId)
        {
            if (roomId == null) return null;
            var sb = new StringBuilder(24 + roomId.Length);
            sb.Append("{\"room_id\":");
            JsonWriter.WriteString(sb, roomId);
            return sb.Append('}').ToString();
        }

        /// <summary><c>sync_request_reload_frames</c> data.</summary>
        public static string ReloadData(long startFrame)
        {
            if (startFrame < 0) throw new ArgumentOutOfRangeException("startFrame", "frames count from 0");
            return "{\"start_frame\":" + startFrame.ToString(CultureInfo.InvariantCulture) + "}";
        }

        /// <summary><c>sync_checksum</c> data: the hash (1 to 64 bytes of UTF-8) of the state after <paramref name="frame"/>.</summary>
        /// <exception cref="ArgumentException">A hash of 0 or more than 64 bytes.</exception>
        public static string ChecksumData(long frame, string hash)
        {
            if (frame < 0) throw new ArgumentOutOfRangeException("frame", "frames count from 0");
            int bytes = hash == null ? 0 : Encoding.UTF8.GetByteCount(hash);
            if (bytes < 1 || bytes > 64) throw new ArgumentException("a checksum hash is 1 to 64 bytes", "hash");
            var sb = new StringBuilder(32 + hash.Length);
            sb.Append("{\"frame\":").Append(frame.ToString(CultureInfo.InvariantCulture)).Append(",\"hash\":");
            JsonWriter.WriteString(sb, hash);
            return sb.Append('}').ToString();
        }

        /// <summary>
        /// Checks that <paramref name="actionJson"/> is one JSON object nested at most 32 deep, as the server
        /// requires, so that it cannot break the envelope it is inserted into. Returns it unchanged.
        /// </summary>
        /// <exception cref="ArgumentException">Not such an object.</exception>
        public static string CheckAction(string actionJson)
        {
            if (actionJson == null) throw new ArgumentNullException("actionJson");
            JsonValue v;
            try
            {
                v = JsonValue.Parse(actionJson, MaxActionDepth);
            }
            catch (FormatException e)
            {
                throw new ArgumentException("action_data is not valid JSON: " + e.Message, "actionJson", e);
            }
            if (v.Kind != JsonKind.Object) throw new ArgumentException("action_data must be a JSON object", "actionJson");
            return actionJson;
        }

        /// <summary>A built action as JSON text, checked like <see cref="CheckAction"/>.</summary>
        public static string ActionJson(JsonValue action)
        {
            if (action == null) throw new ArgumentNullException("action");
            if (action.Kind != JsonKind.Object) throw new ArgumentException("action_data must be a JSON object", "action");
            string json = action.ToString();
            // A parsed value is inserted as its source text; a built one is checked for depth.
            return CheckAction(json);
        }
    }

    /// <summary>The protocol's clock: seconds since the Unix epoch, as a double.</summary>
    public static class UnixTime
    {
        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        /// <summary>Now, in Unix seconds.</summary>
        public static double Now()
        {
            return (DateTime.UtcNow - Epoch).Ticks / (double)TimeSpan.TicksPerSecond;
        }
    }
}

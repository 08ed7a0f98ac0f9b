using System;
using System.Collections.Generic;
using System.Text;

namespace Movan.Client
{
    /// <summary>
    /// A strict RFC 8259 parser over UTF-8 bytes that builds <see cref="JsonValue"/>s remembering their source bytes.
    /// </summary>
    /// <remarks>
    /// Hostile input fails with <see cref="FormatException"/>, never with a crash: nesting is bounded by
    /// <c>maxDepth</c>, strings must be valid UTF-8 without raw control characters, <c>\u</c> escapes must form valid
    /// Unicode (no lone surrogates, as the server requires of <c>action_data</c>), and nothing may follow the value
    /// but whitespace.
    /// </remarks>
    internal sealed class JsonReader
    {
        /// <summary>Server messages nest a frame's <c>action_data</c> (at most 32 deep) about 6 levels down.</summary>
        public const int DefaultMaxDepth = 64;

        private readonly byte[] buf;
        private readonly int end;
        private readonly int maxDepth;
        private int pos;
        private StringBuilder scratch;
        // Reused per nesting depth while a container is read (each container then gets an exact-size array), and
        // per thread across parses: parsing calls nothing outside this class, so it never re-enters.
        [ThreadStatic] private static List<List<JsonValue>> itemScratchOfThread;
        [ThreadStatic] private static List<List<KeyValuePair<string, JsonValue>>> memberScratchOfThread;
        private readonly List<List<JsonValue>> itemScratch;
        private readonly List<List<KeyValuePair<string, JsonValue>>> memberScratch;

        private static readonly JsonValue[] NoItems = new JsonValue[0];
        private static readonly KeyValuePair<string, JsonValue>[] NoMembers = new KeyValuePair<string, JsonValue>[0];

        /// <summary>Member names of the protocol, shared instead of decoded again for every message.</summary>
        private static readonly string[] KnownNames =
        {
            "proto", "data", "frame_count", "actions", "uid", "extra_data", "timestamp", "action_data", "start_frame",
            "end_frame", "last", "frames", "room_id", "capacity", "min_players", "status", "members", "ready",
            "connected", "start_time", "frame_interval_ms", "seed", "reason", "results", "server_time", "code",
            "message", "salt", "cipher",
        };
        private static readonly byte[][] KnownNameBytes = EncodeNames();

        public JsonReader(byte[] buf, int offset, int count, int maxDepth)
        {
            if (buf == null) throw new ArgumentNullException("buf");
            if (offset < 0 || count < 0 || offset > buf.Length - count) throw new ArgumentOutOfRangeException("count");
            this.buf = buf;
            this.pos = offset;
            this.end = offset + count;
            this.maxDepth = maxDepth;
            itemScratch = itemScratchOfThread ?? (itemScratchOfThread = new List<List<JsonValue>>());
            memberScratch = memberScratchOfThread ??
                (memberScratchOfThread = new List<List<KeyValuePair<string, JsonValue>>>());
        }

        public JsonValue ReadDocument()
        {
            SkipWhitespace();
            JsonValue v = ReadValue(0);
            SkipWhitespace();
            if (pos != end) throw Error("unexpected bytes after the JSON value");
            return v;
        }

        private JsonValue ReadValue(int depth)
        {
            if (pos >= end) throw Error("unexpected end of input");
            byte b = buf[pos];
            switch (b)
            {
                case (byte)'{':
                    return ReadObject(depth + 1);
                case (byte)'[':
                    return ReadArray(depth + 1);
                case (byte)'"':
                {
                    int start = pos;
                    string s = ReadString();
                    return JsonValue.Parsed(JsonKind.String, s, null, null, buf, start, pos - start);
                }
                case (byte)'t':
                    return ReadLiteral("true", JsonKind.True);
                case (byte)'f':
                    return ReadLiteral("false", JsonKind.False);
                case (byte)'n':
                    return ReadLiteral("null", JsonKind.Null);
                default:
                    if (b == '-' || (b >= '0' && b <= '9')) return ReadNumber();
                    throw Error("unexpected character");
            }
        }

        private JsonValue ReadObject(int depth)
        {
            if (depth > maxDepth) throw Error("nested deeper than " + maxDepth);
            int start = pos;
            pos++; // '{'
            SkipWhitespace();
            if (Peek() == '}')
            {
                pos++;
                return JsonValue.Parsed(JsonKind.Object, null, null, NoMembers, buf, start, pos - start);
            }
            while (memberScratch.Count < depth) memberScratch.Add(new List<KeyValuePair<string, JsonValue>>());
            List<KeyValuePair<string, JsonValue>> members = memberScratch[depth - 1];
            members.Clear();
            while (true)
            {
                SkipWhitespace();
                if (Peek() != '"') throw Error("expected a member name");
                string name = ReadName();
                SkipWhitespace();
                if (Peek() != ':') throw Error("expected ':'");
                pos++;
                SkipWhitespace();
                JsonValue value = ReadValue(depth);
                members.Add(new KeyValuePair<string, JsonValue>(name, value));
                SkipWhitespace();
                int c = Peek();
                pos++;
                if (c == '}') break;
                if (c != ',') throw Error("expected ',' or '}'");
            }
            KeyValuePair<string, JsonValue>[] exact = members.ToArray();
            members.Clear();
            return JsonValue.Parsed(JsonKind.Object, null, null, exact, buf, start, pos - start);
        }

        private JsonValue ReadArray(int depth)
        {
            if (depth > maxDepth) throw Error("nested deeper than " + maxDepth);
            int start = pos;
            pos++; // '['
            SkipWhitespace();
            if (Peek() == ']')
            {
                pos++;
                return JsonValue.Parsed(JsonKind.Array, null, NoItems, null, buf, start, pos - start);
            }
            while (itemScratch.Count < depth) itemScratch.Add(new List<JsonValue>());
            List<JsonValue> items = itemScratch[depth - 1];
            items.Clear();
            while (true)
            {
                SkipWhitespace();
                items.Add(ReadValue(depth));
                SkipWhitespace();
                int c = Peek();
                pos++;
                if (c == ']') break;
                if (c != ',') throw Error("expected ',' or ']'");
            }
            JsonValue[] exact = items.ToArray();
            items.Clear();
            return JsonValue.Parsed(JsonKind.Array, null, exact, null, buf, start, pos - start);
        }

        private JsonValue ReadLiteral(string word, JsonKind kind)
        {
            if (end - pos < word.Length) throw Error("unexpected end of input");
            for (int i = 0; i < word.Length; i++)
            {
                if (buf[pos + i] != word[i]) throw Error("unexpected character");
            }
            int start = pos;
            pos += word.Length;
            return JsonValue.Parsed(kind, null, null, null, buf, start, word.Length);
        }

        private JsonValue ReadNumber()
        {
            int start = pos;
            if (Peek() == '-') pos++;
            if (Peek() == '0')
            {
                pos++;
            }
            else if (IsDigit(Peek()))
            {
                while (IsDigit(Peek())) pos++;
            }
            else
            {
                throw Error("expected a digit");
            }
            if (Peek() == '.')
            {
                pos++;
                if (!IsDigit(Peek())) throw Error("expected a digit after '.'");
                while (IsDigit(Peek())) pos++;
            }
            int e = Peek();
            if (e == 'e' || e == 'E')
            {
                pos++;
                int sign = Peek();
                if (sign == '+' || sign == '-') pos++;
                if (!IsDigit(Peek())) throw Error("expected a digit in the exponent");
                while (IsDigit(Peek())) pos++;
            }
            // The text is made from the bytes only if asked for (integers are read from the bytes directly).
            return JsonValue.Parsed(JsonKind.Number, null, null, null, buf, start, pos - start);
        }

        /// <summary>A member name: one of <see cref="KnownNames"/> when the bytes match (no allocation), else decoded.</summary>
        private string ReadName()
        {
            int first = pos + 1;
            int end2 = first;
            while (end2 < end && buf[end2] != '"' && buf[end2] != '\\') end2++;
            if (end2 < end && buf[end2] == '"')
            {
                int len = end2 - first;
                for (int k = 0; k < KnownNameBytes.Length; k++)
                {
                    byte[] known = KnownNameBytes[k];
                    if (known.Length != len) continue;
                    int i = 0;
                    while (i < len && buf[first + i] == known[i]) i++;
                    if (i == len)
                    {
                        pos = end2 + 1;
                        return KnownNames[k];
                    }
                }
            }
            return ReadString();
        }

        private static byte[][] EncodeNames()
        {
            var all = new byte[KnownNames.Length][];
            for (int i = 0; i < all.Length; i++) all[i] = Encoding.ASCII.GetBytes(KnownNames[i]);
            return all;
        }

        /// <summary>Reads a string starting at the opening quote; leaves pos after the closing quote.</summary>
        private string ReadString()
        {
            pos++; // '"'
            int runStart = pos;
            // Fast path: no escapes.
            while (pos < end)
            {
                byte b = buf[pos];
                if (b == '"')
                {
                    string s = Decode(runStart, pos - runStart);
                    pos++;
                    return s;
                }
                if (b == '\\') break;
                if (b < 0x20) throw Error("control character in a string");
                pos++;
            }
            if (pos >= end) throw Error("unterminated string");
            StringBuilder sb = scratch ?? (scratch = new StringBuilder());
            sb.Length = 0;
            sb.Append(Decode(runStart, pos - runStart));
            while (true)
            {
                if (pos >= end) throw Error("unterminated string");
                byte b = buf[pos];
                if (b == '"')
                {
                    pos++;
                    return sb.ToString();
                }
                if (b == '\\')
                {
                    pos++;
                    ReadEscape(sb);
                    continue;
                }
                runStart = pos;
                while (pos < end && buf[pos] != '"' && buf[pos] != '\\')
                {
                    if (buf[pos] < 0x20) throw Error("control character in a string");
                    pos++;
                }
                sb.Append(Decode(runStart, pos - runStart));
            }
        }

        private void ReadEscape(StringBuilder sb)
        {
            if (pos >= end) throw Error("unterminated escape");
            byte c = buf[pos++];
            switch (c)
            {
                case (byte)'"': sb.Append('"'); break;
                case (byte)'\\': sb.Append('\\'); break;
                case (byte)'/': sb.Append('/'); break;
                case (byte)'b': sb.Append('\b'); break;
                case (byte)'f': sb.Append('\f'); break;
                case (byte)'n': sb.Append('\n'); break;
                case (byte)'r': sb.Append('\r'); break;
                case (byte)'t': sb.Append('\t'); break;
                case (byte)'u':
                {
                    char high = (char)ReadHex4();
                    if (char.IsLowSurrogate(high)) throw Error("lone low surrogate in a \\u escape");
                    if (char.IsHighSurrogate(high))
                    {
                        if (end - pos < 6 || buf[pos] != '\\' || buf[pos + 1] != 'u')
                        {
                            throw Error("lone high surrogate in a \\u escape");
                        }
                        pos += 2;
                        char low = (char)ReadHex4();
                        if (!char.IsLowSurrogate(low)) throw Error("lone high surrogate in a \\u escape");
                        sb.Append(high).Append(low);
                    }
                    else
                    {
                        sb.Append(high);
                    }
                    break;
                }
                default:
                    throw Error("unknown escape");
            }
        }

        private int ReadHex4()
        {
            if (end - pos < 4) throw Error("truncated \\u escape");
            int v = 0;
            for (int i = 0; i < 4; i++)
            {
                int c = buf[pos++];
                int d;
                if (c >= '0' && c <= '9') d = c - '0';
                else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
                else throw Error("bad hex digit in a \\u escape");
                v = (v << 4) | d;
            }
            return v;
        }

        private string Decode(int start, int count)
        {
            if (count == 0) return string.Empty;
            bool ascii = true;
            for (int i = start; i < start + count; i++)
            {
                if (buf[i] >= 0x80)
                {
                    ascii = false;
                    break;
                }
            }
            if (ascii) return Encoding.ASCII.GetString(buf, start, count);
            try
            {
                return JsonWriter.StrictUtf8.GetString(buf, start, count);
            }
            catch (ArgumentException)
            {
                throw Error("invalid UTF-8 in a string");
            }
        }

        private void SkipWhitespace()
        {
            while (pos < end)
            {
                byte b = buf[pos];
                if (b != ' ' && b != '\t' && b != '\n' && b != '\r') return;
                pos++;
            }
        }

        private int Peek()
        {
            return pos < end ? buf[pos] : -1;
        }

        private static bool IsDigit(int c)
        {
            return c >= '0' && c <= '9';
        }

        private FormatException Error(string what)
        {
            return new FormatException("invalid JSON at byte " + pos + ": " + what);
        }
    }
}

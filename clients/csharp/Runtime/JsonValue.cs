using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Movan.Client
{
    /// <summary>The kind of a <see cref="JsonValue"/>.</summary>
    public enum JsonKind
    {
        Null,
        False,
        True,
        Number,
        String,
        Array,
        Object,
    }

    /// <summary>
    /// A JSON value: parsed from server bytes (<see cref="Parse(byte[], int)"/>), or built by code
    /// (<see cref="NewObject"/>, <see cref="NewArray"/>, ...) to send as <c>action_data</c>.
    /// </summary>
    /// <remarks>
    /// A parsed value remembers the exact bytes it came from (<see cref="RawBytes"/>, <see cref="RawJson"/>): lockstep
    /// clients compare and hash frames by those bytes, never by a re-serialization. Numbers keep their source text, so
    /// no precision is lost before you ask for a <see cref="AsDouble"/> or <see cref="AsInt64"/>. Object members keep
    /// their order; the indexer returns the first member of a name.
    /// </remarks>
    public sealed class JsonValue
    {
        private static readonly JsonValue[] NoItems = new JsonValue[0];
        private static readonly KeyValuePair<string, JsonValue>[] NoMembers = new KeyValuePair<string, JsonValue>[0];

        private readonly JsonKind kind;
        // String: the decoded text. Number: the number's text as written (made from the source bytes on first use).
        private string text;
        // Arrays for parsed values (exact size), lists for built ones.
        private readonly IReadOnlyList<JsonValue> items;
        private readonly IReadOnlyList<KeyValuePair<string, JsonValue>> members;
        // The source bytes of a parsed value; null for a built one.
        private byte[] source;
        private int start;
        private int length;
        private string rawJson;

        private JsonValue(JsonKind kind, string text, IReadOnlyList<JsonValue> items,
            IReadOnlyList<KeyValuePair<string, JsonValue>> members)
        {
            this.kind = kind;
            this.text = text;
            this.items = items;
            this.members = members;
        }

        /// <summary>The value's kind.</summary>
        public JsonKind Kind { get { return kind; } }

        /// <summary>True for <c>null</c>.</summary>
        public bool IsNull { get { return kind == JsonKind.Null; } }

        /// <summary>Items of an array, members of an object, else 0.</summary>
        public int Count
        {
            get
            {
                if (kind == JsonKind.Array) return items.Count;
                if (kind == JsonKind.Object) return members.Count;
                return 0;
            }
        }

        /// <summary>The <paramref name="index"/>th item of an array.</summary>
        /// <exception cref="InvalidOperationException">Not an array.</exception>
        public JsonValue this[int index]
        {
            get
            {
                if (kind != JsonKind.Array) throw new InvalidOperationException("not a JSON array: " + kind);
                return items[index];
            }
        }

        /// <summary>The first member named <paramref name="name"/> of an object, or null when missing (or not an object).</summary>
        public JsonValue this[string name]
        {
            get
            {
                if (kind != JsonKind.Object) return null;
                for (int i = 0; i < members.Count; i++)
                {
                    if (members[i].Key == name) return members[i].Value;
                }
                return null;
            }
        }

        /// <summary>The items of an array (empty for other kinds).</summary>
        public IReadOnlyList<JsonValue> Items { get { return kind == JsonKind.Array ? items : NoItems; } }

        /// <summary>The members of an object, in source order (empty for other kinds).</summary>
        public IReadOnlyList<KeyValuePair<string, JsonValue>> Members
        {
            get { return kind == JsonKind.Object ? members : NoMembers; }
        }

        /// <summary>The exact UTF-8 bytes this value was parsed from; for a built value, its compact JSON.</summary>
        public byte[] RawBytes()
        {
            if (source == null) return Encoding.UTF8.GetBytes(ToString());
            var copy = new byte[length];
            Buffer.BlockCopy(source, start, copy, 0, length);
            return copy;
        }

        /// <summary>The exact JSON text this value was parsed from; for a built value, its compact JSON.</summary>
        public string RawJson
        {
            get
            {
                if (rawJson == null)
                {
                    rawJson = source == null ? ToString() : Encoding.UTF8.GetString(source, start, length);
                }
                return rawJson;
            }
        }

        /// <summary>The text of a string.</summary>
        /// <exception cref="InvalidOperationException">Not a string.</exception>
        public string AsString()
        {
            if (kind != JsonKind.String) throw new InvalidOperationException("not a JSON string: " + kind);
            return text;
        }

        /// <summary>The value of a boolean.</summary>
        /// <exception cref="InvalidOperationException">Not a boolean.</exception>
        public bool AsBool()
        {
            if (kind == JsonKind.True) return true;
            if (kind == JsonKind.False) return false;
            throw new InvalidOperationException("not a JSON boolean: " + kind);
        }

        /// <summary>A number as a double (the nearest one, as any JSON parser gives).</summary>
        /// <exception cref="InvalidOperationException">Not a number, or out of the double range.</exception>
        public double AsDouble()
        {
            if (kind != JsonKind.Number) throw new InvalidOperationException("not a JSON number: " + kind);
            long exact;
            // Integers of up to 15 digits are exact doubles: no text needed.
            if (source != null && length <= 16 && TryParseIntegerBytes(out exact) && exact > -1000000000000000L &&
                exact < 1000000000000000L && (exact != 0 || source[start] != '-'))
            {
                return exact;
            }
            double d;
            if (!double.TryParse(Text, NumberStyles.Float, CultureInfo.InvariantCulture, out d) ||
                double.IsInfinity(d))
            {
                throw new InvalidOperationException("JSON number out of range: " + Text);
            }
            return d;
        }

        /// <summary>A number written as an integer (no fraction, no exponent) that fits a long.</summary>
        /// <exception cref="InvalidOperationException">Not such a number.</exception>
        public long AsInt64()
        {
            long v;
            if (kind == JsonKind.Number && source != null)
            {
                if (TryParseIntegerBytes(out v)) return v;
            }
            else if (kind == JsonKind.Number && IsIntegerText(text) &&
                long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
            {
                return v;
            }
            throw new InvalidOperationException("not a 64-bit JSON integer: " + (kind == JsonKind.Number ? Text : kind.ToString()));
        }

        /// <summary>A number written as a non-negative integer that fits a ulong.</summary>
        /// <exception cref="InvalidOperationException">Not such a number.</exception>
        public ulong AsUInt64()
        {
            ulong v;
            if (kind != JsonKind.Number || !IsIntegerText(Text) ||
                !ulong.TryParse(Text, NumberStyles.None, CultureInfo.InvariantCulture, out v))
            {
                throw new InvalidOperationException("not an unsigned 64-bit JSON integer: " + (kind == JsonKind.Number ? Text : kind.ToString()));
            }
            return v;
        }

        /// <summary>A parsed number written as an integer that fits a long, read from its bytes without allocating.</summary>
        private bool TryParseIntegerBytes(out long value)
        {
            value = 0;
            int i = start, end = start + length;
            bool negative = source[i] == '-';
            if (negative) i++;
            if (i == end) return false;
            // Accumulate negatively so that long.MinValue fits.
            long acc = 0;
            for (; i < end; i++)
            {
                int d = source[i] - '0';
                if (d < 0 || d > 9) return false; // a fraction or an exponent
                if (acc < (long.MinValue + d) / 10) return false;
                acc = acc * 10 - d;
            }
            if (!negative)
            {
                if (acc == long.MinValue) return false;
                acc = -acc;
            }
            value = acc;
            return true;
        }

        private static bool IsIntegerText(string s)
        {
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (c == '.' || c == 'e' || c == 'E') return false;
            }
            return true;
        }

        // ---- building ----

        /// <summary>The JSON <c>null</c>.</summary>
        public static readonly JsonValue Null = new JsonValue(JsonKind.Null, null, null, null);

        /// <summary>A new, empty object; add members with <see cref="Add(string, JsonValue)"/>.</summary>
        public static JsonValue NewObject()
        {
            return new JsonValue(JsonKind.Object, null, null, new List<KeyValuePair<string, JsonValue>>());
        }

        /// <summary>A new, empty array; add items with <see cref="Add(JsonValue)"/>.</summary>
        public static JsonValue NewArray()
        {
            return new JsonValue(JsonKind.Array, null, new List<JsonValue>(), null);
        }

        /// <summary>A string value.</summary>
        public static JsonValue From(string s)
        {
            if (s == null) return Null;
            return new JsonValue(JsonKind.String, s, null, null);
        }

        /// <summary>A boolean value.</summary>
        public static JsonValue From(bool b)
        {
            return new JsonValue(b ? JsonKind.True : JsonKind.False, null, null, null);
        }

        /// <summary>An integer value.</summary>
        public static JsonValue From(long n)
        {
            return new JsonValue(JsonKind.Number, n.ToString(CultureInfo.InvariantCulture), null, null);
        }

        /// <summary>A number; JSON has no NaN or infinity.</summary>
        /// <exception cref="ArgumentException"><paramref name="d"/> is NaN or infinite.</exception>
        public static JsonValue From(double d)
        {
            return new JsonValue(JsonKind.Number, JsonWriter.FormatNumber(d), null, null);
        }

        /// <summary>Adds a member to a built object; returns this object, for chaining.</summary>
        public JsonValue Add(string name, JsonValue value)
        {
            if (kind != JsonKind.Object || source != null)
            {
                throw new InvalidOperationException("Add(name, value) needs an object made by NewObject()");
            }
            if (name == null) throw new ArgumentNullException("name");
            ((List<KeyValuePair<string, JsonValue>>)members).Add(new KeyValuePair<string, JsonValue>(name, value ?? Null));
            return this;
        }

        /// <summary>Adds a string member.</summary>
        public JsonValue Add(string name, string value) { return Add(name, From(value)); }

        /// <summary>Adds an integer member.</summary>
        public JsonValue Add(string name, long value) { return Add(name, From(value)); }

        /// <summary>Adds a number member.</summary>
        public JsonValue Add(string name, double value) { return Add(name, From(value)); }

        /// <summary>Adds a boolean member.</summary>
        public JsonValue Add(string name, bool value) { return Add(name, From(value)); }

        /// <summary>Adds an item to a built array; returns this array, for chaining.</summary>
        public JsonValue Add(JsonValue value)
        {
            if (kind != JsonKind.Array || source != null)
            {
                throw new InvalidOperationException("Add(value) needs an array made by NewArray()");
            }
            ((List<JsonValue>)items).Add(value ?? Null);
            return this;
        }

        /// <summary>Compact JSON: the source bytes for a parsed value, a fresh serialization for a built one.</summary>
        public override string ToString()
        {
            if (source != null) return RawJson;
            var sb = new StringBuilder();
            JsonWriter.WriteValue(sb, this);
            return sb.ToString();
        }

        internal string Text
        {
            get
            {
                if (text == null && kind == JsonKind.Number && source != null)
                {
                    text = Encoding.ASCII.GetString(source, start, length);
                }
                return text;
            }
        }

        // ---- parsing ----

        /// <summary>Parses one JSON value from UTF-8 bytes (the whole array).</summary>
        /// <exception cref="FormatException">Not valid JSON, not valid UTF-8, or nested deeper than <paramref name="maxDepth"/>.</exception>
        public static JsonValue Parse(byte[] utf8, int maxDepth = JsonReader.DefaultMaxDepth)
        {
            if (utf8 == null) throw new ArgumentNullException("utf8");
            return Parse(utf8, 0, utf8.Length, maxDepth);
        }

        /// <summary>Parses one JSON value from <paramref name="count"/> UTF-8 bytes at <paramref name="offset"/>.</summary>
        /// <exception cref="FormatException">Not valid JSON, not valid UTF-8, or nested too deep.</exception>
        public static JsonValue Parse(byte[] utf8, int offset, int count, int maxDepth = JsonReader.DefaultMaxDepth)
        {
            return new JsonReader(utf8, offset, count, maxDepth).ReadDocument();
        }

        /// <summary>Parses one JSON value from text.</summary>
        /// <exception cref="FormatException">Not valid JSON, or nested too deep.</exception>
        public static JsonValue Parse(string json, int maxDepth = JsonReader.DefaultMaxDepth)
        {
            if (json == null) throw new ArgumentNullException("json");
            byte[] bytes;
            try
            {
                bytes = JsonWriter.StrictUtf8.GetBytes(json);
            }
            catch (ArgumentException e)
            {
                throw new FormatException("the text is not valid Unicode (a lone surrogate?)", e);
            }
            return Parse(bytes, 0, bytes.Length, maxDepth);
        }

        internal static JsonValue Parsed(JsonKind kind, string text, JsonValue[] items,
            KeyValuePair<string, JsonValue>[] members, byte[] source, int start, int length)
        {
            var v = new JsonValue(kind, text, items, members);
            v.source = source;
            v.start = start;
            v.length = length;
            return v;
        }
    }
}

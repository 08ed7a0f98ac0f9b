using System;
using System.Globalization;
using System.Text;

namespace Movan.Client
{
    /// <summary>Compact JSON output for client messages: escaped strings, round-trip numbers, verbatim raw JSON.</summary>
    public static class JsonWriter
    {
        /// <summary>UTF-8 without a byte order mark that throws on invalid input (lone surrogates).</summary>
        public static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        private const string Hex = "0123456789abcdef";

        /// <summary>Appends <paramref name="s"/> as a JSON string literal.</summary>
        public static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            int run = 0;
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                string esc = null;
                switch (c)
                {
                    case '"': esc = "\\\""; break;
                    case '\\': esc = "\\\\"; break;
                    case '\n': esc = "\\n"; break;
                    case '\r': esc = "\\r"; break;
                    case '\t': esc = "\\t"; break;
                    case '\b': esc = "\\b"; break;
                    case '\f': esc = "\\f"; break;
                    default:
                        if (c < 0x20)
                        {
                            esc = "\\u00" + Hex[c >> 4] + Hex[c & 0xf];
                        }
                        break;
                }
                if (esc != null)
                {
                    sb.Append(s, run, i - run).Append(esc);
                    run = i + 1;
                }
            }
            sb.Append(s, run, s.Length - run).Append('"');
        }

        /// <summary>A double as the shortest JSON number text that reads back as the same double.</summary>
        /// <exception cref="ArgumentException">NaN or infinite: JSON has no such numbers.</exception>
        public static string FormatNumber(double d)
        {
            if (double.IsNaN(d) || double.IsInfinity(d))
            {
                throw new ArgumentException("JSON numbers must be finite, got " + d);
            }
            return d.ToString("R", CultureInfo.InvariantCulture);
        }

        /// <summary>Appends <paramref name="v"/> as compact JSON: a parsed value's source text, or a built value's serialization.</summary>
        public static void WriteValue(StringBuilder sb, JsonValue v)
        {
            switch (v.Kind)
            {
                case JsonKind.Null: sb.Append("null"); return;
                case JsonKind.True: sb.Append("true"); return;
                case JsonKind.False: sb.Append("false"); return;
                case JsonKind.Number: sb.Append(v.Text); return;
                case JsonKind.String: WriteString(sb, v.Text); return;
                case JsonKind.Array:
                    sb.Append('[');
                    for (int i = 0; i < v.Count; i++)
                    {
                        if (i > 0) sb.Append(',');
                        WriteValue(sb, v[i]);
                    }
                    sb.Append(']');
                    return;
                default:
                    sb.Append('{');
                    bool first = true;
                    foreach (var m in v.Members)
                    {
                        if (!first) sb.Append(',');
                        first = false;
                        WriteString(sb, m.Key);
                        sb.Append(':');
                        WriteValue(sb, m.Value);
                    }
                    sb.Append('}');
                    return;
            }
        }
    }
}

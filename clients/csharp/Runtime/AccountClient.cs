using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Threading.Tasks;

namespace Movan.Client
{
    /// <summary>What a login or refresh returns: the tokens, the session key and where to play.</summary>
    public sealed class Session
    {
        /// <summary>The player's uid (a decimal string; treat it as opaque).</summary>
        public string Uid;
        /// <summary>The access token (a JWT) for the sync server, <c>logout</c> and <c>me</c>.</summary>
        public string Token;
        /// <summary>Single use: <see cref="AccountClient.RefreshAsync"/> exchanges it for the next session.</summary>
        public string RefreshToken;
        /// <summary>Seconds the access token lives (from <see cref="ReceivedAt"/>).</summary>
        public long ExpiresIn;
        /// <summary>The sync server, <c>host:port</c>.</summary>
        public string SyncAddr;
        /// <summary>The sync server's WebSocket endpoint, or null.</summary>
        public string SyncWsUrl;
        /// <summary>The sync server's UDP (KCP) endpoint, <c>host:port</c>, or null when it runs without UDP; see <see cref="UdpTransport"/>.</summary>
        public string SyncUdpAddr;
        /// <summary>The secret that seals this session's sync connections (base64 of 32 bytes); null from an account server without encryption. Keep it as secret as the password.</summary>
        public string SessionKey;
        /// <summary>When this client received it (UTC): the access token expires at <c>ReceivedAt + ExpiresIn</c>.</summary>
        public DateTime ReceivedAt;

        internal static Session FromJson(JsonValue v)
        {
            return new Session
            {
                Uid = Req(v, "uid").AsString(),
                Token = Req(v, "token").AsString(),
                RefreshToken = Req(v, "refresh_token").AsString(),
                ExpiresIn = Req(v, "expires_in").AsInt64(),
                SyncAddr = Req(v, "sync_addr").AsString(),
                SyncWsUrl = OptString(v, "sync_ws_url"),
                SyncUdpAddr = OptString(v, "sync_udp_addr"),
                SessionKey = OptString(v, "session_key"),
                ReceivedAt = DateTime.UtcNow,
            };
        }

        internal static JsonValue Req(JsonValue v, string name)
        {
            JsonValue f = v[name];
            if (f == null) throw new InvalidOperationException("missing field " + name);
            return f;
        }

        internal static string OptString(JsonValue v, string name)
        {
            JsonValue f = v[name];
            return f == null || f.IsNull ? null : f.AsString();
        }
    }

    /// <summary>What <c>GET /v1/me</c> returns.</summary>
    public sealed class Me
    {
        public string Uid;
        public string Username;
        /// <summary><c>player</c> or <c>admin</c>.</summary>
        public string Role;
    }

    /// <summary>One finished game from <c>GET /v1/me/matches</c>.</summary>
    public sealed class Match
    {
        public string MatchId;
        public string RoomId;
        /// <summary>Everyone who started it, in join order.</summary>
        public IReadOnlyList<string> Players;
        public long FrameCount;
        public double DurationSecs;
        /// <summary>A <c>game_over</c> reason.</summary>
        public string EndReason;
        /// <summary>What the room set, or JSON null.</summary>
        public JsonValue Results;
        public double StartedAt;
        public double EndedAt;
        public string NodeId;
    }

    /// <summary>A page of <see cref="Match"/>es, newest first.</summary>
    public sealed class MatchPage
    {
        public IReadOnlyList<Match> Matches;
        /// <summary>Pass it as <c>before</c> for the next (older) page; null on the last page.</summary>
        public string Next;
    }

    /// <summary>
    /// The account server's HTTP API (docs/protocol.md §3). Every method is asynchronous and safe to call from any
    /// thread; continuations do not capture Unity's synchronization context. Failures are <see cref="MovanException"/>s:
    /// <see cref="ErrorKind.Http"/> with the status and the body's code (<c>invalid_credentials</c>,
    /// <c>username_taken</c>, <c>too_many_attempts</c> with <see cref="MovanException.RetryAfter"/>, ...),
    /// <see cref="ErrorKind.Network"/> or <see cref="ErrorKind.Timeout"/>.
    /// </summary>
    public sealed class AccountClient : IDisposable
    {
        private const int MaxQuotedBody = 512;
        private readonly HttpClient http;
        private readonly string baseUrl;

        /// <summary>A client of the account server at <paramref name="baseUrl"/>, e.g. <c>http://127.0.0.1:2026</c>.</summary>
        public AccountClient(string baseUrl, HttpMessageHandler handler = null)
        {
            if (baseUrl == null) throw new ArgumentNullException("baseUrl");
            this.baseUrl = baseUrl.TrimEnd('/');
            http = handler == null ? new HttpClient() : new HttpClient(handler);
            http.Timeout = TimeSpan.FromSeconds(30);
        }

        /// <summary>The base URL, without a trailing slash.</summary>
        public string BaseUrl { get { return baseUrl; } }

        /// <summary><c>POST /v1/register</c>: creates the account, returns its uid. A taken name is HTTP 409 <c>username_taken</c>.</summary>
        public async Task<string> RegisterAsync(string username, string password)
        {
            JsonValue v = await Send(HttpMethod.Post, "/v1/register", Credentials(username, password), null)
                .ConfigureAwait(false);
            return Parse(v, x => Session.Req(x, "uid").AsString());
        }

        /// <summary><c>POST /v1/login</c>: checks the password and opens a session.</summary>
        public async Task<Session> LoginAsync(string username, string password)
        {
            JsonValue v = await Send(HttpMethod.Post, "/v1/login", Credentials(username, password), null)
                .ConfigureAwait(false);
            return Parse(v, Session.FromJson);
        }

        /// <summary>Registers unless the name exists (409), then logs in. Handy for bots and tests.</summary>
        public async Task<Session> RegisterOrLoginAsync(string username, string password)
        {
            try
            {
                await RegisterAsync(username, password).ConfigureAwait(false);
            }
            catch (MovanException e)
            {
                if (e.HttpStatus != 409) throw;
            }
            return await LoginAsync(username, password).ConfigureAwait(false);
        }

        /// <summary><c>POST /v1/refresh</c>: the next session (new tokens, same session key). The refresh token is then used up.</summary>
        public async Task<Session> RefreshAsync(string refreshToken)
        {
            var sb = new StringBuilder("{\"refresh_token\":");
            JsonWriter.WriteString(sb, refreshToken ?? "");
            sb.Append('}');
            JsonValue v = await Send(HttpMethod.Post, "/v1/refresh", sb.ToString(), null).ConfigureAwait(false);
            return Parse(v, Session.FromJson);
        }

        /// <summary><c>POST /v1/logout</c>: ends the session; its live game connection is closed with <c>session_revoked</c>.</summary>
        public Task LogoutAsync(string token)
        {
            return Send(HttpMethod.Post, "/v1/logout", null, token);
        }

        /// <summary><c>GET /v1/me</c>.</summary>
        public async Task<Me> MeAsync(string token)
        {
            JsonValue v = await Send(HttpMethod.Get, "/v1/me", null, token).ConfigureAwait(false);
            return Parse(v, x => new Me
            {
                Uid = Session.Req(x, "uid").AsString(),
                Username = Session.Req(x, "username").AsString(),
                Role = Session.OptString(x, "role"),
            });
        }

        /// <summary><c>GET /v1/me/matches</c>: finished games, newest first; <paramref name="before"/> is a page's <see cref="MatchPage.Next"/>.</summary>
        public async Task<MatchPage> MatchesAsync(string token, int limit = 20, string before = null)
        {
            string path = "/v1/me/matches?limit=" + limit.ToString(CultureInfo.InvariantCulture);
            if (before != null) path += "&before=" + Uri.EscapeDataString(before);
            JsonValue v = await Send(HttpMethod.Get, path, null, token).ConfigureAwait(false);
            return Parse(v, ParseMatches);
        }

        /// <summary><c>POST /v1/admin/users/{uid}/ban</c> with an admin's token.</summary>
        public Task BanAsync(string adminToken, string uid)
        {
            return Send(HttpMethod.Post, "/v1/admin/users/" + Uri.EscapeDataString(uid) + "/ban", null, adminToken);
        }

        /// <summary><c>POST /v1/admin/users/{uid}/unban</c> with an admin's token.</summary>
        public Task UnbanAsync(string adminToken, string uid)
        {
            return Send(HttpMethod.Post, "/v1/admin/users/" + Uri.EscapeDataString(uid) + "/unban", null, adminToken);
        }

        /// <summary>Releases the HTTP connections.</summary>
        public void Dispose()
        {
            http.Dispose();
        }

        private static string Credentials(string username, string password)
        {
            var sb = new StringBuilder("{\"username\":");
            JsonWriter.WriteString(sb, username ?? "");
            sb.Append(",\"password\":");
            JsonWriter.WriteString(sb, password ?? "");
            return sb.Append('}').ToString();
        }

        private static MatchPage ParseMatches(JsonValue v)
        {
            JsonValue list = Session.Req(v, "matches");
            var matches = new List<Match>();
            foreach (JsonValue m in list.Items)
            {
                var players = new List<string>();
                foreach (JsonValue p in Session.Req(m, "players").Items) players.Add(p.AsString());
                matches.Add(new Match
                {
                    MatchId = Session.Req(m, "match_id").AsString(),
                    RoomId = Session.Req(m, "room_id").AsString(),
                    Players = players,
                    FrameCount = Session.Req(m, "frame_count").AsInt64(),
                    DurationSecs = Session.Req(m, "duration_secs").AsDouble(),
                    EndReason = Session.Req(m, "end_reason").AsString(),
                    Results = m["results"] ?? JsonValue.Null,
                    StartedAt = Session.Req(m, "started_at").AsDouble(),
                    EndedAt = Session.Req(m, "ended_at").AsDouble(),
                    NodeId = Session.OptString(m, "node_id"),
                });
            }
            return new MatchPage { Matches = matches, Next = Session.OptString(v, "next") };
        }

        private static T Parse<T>(JsonValue v, Func<JsonValue, T> read)
        {
            try
            {
                return read(v);
            }
            catch (InvalidOperationException e)
            {
                throw new MovanException(ErrorKind.Protocol, "unexpected account server response: " + e.Message, e);
            }
        }

        /// <summary>Sends a request; returns the JSON body of a success (null when empty), or throws for an error status.</summary>
        private async Task<JsonValue> Send(HttpMethod method, string path, string jsonBody, string bearer)
        {
            var req = new HttpRequestMessage(method, baseUrl + path);
            if (jsonBody != null) req.Content = new StringContent(jsonBody, Encoding.UTF8, "application/json");
            if (bearer != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            HttpResponseMessage resp;
            try
            {
                resp = await http.SendAsync(req).ConfigureAwait(false);
            }
            catch (TaskCanceledException e)
            {
                throw new MovanException(ErrorKind.Timeout, method + " " + path + " timed out", e);
            }
            catch (HttpRequestException e)
            {
                throw new MovanException(ErrorKind.Network, method + " " + path + " failed: " + e.Message, e);
            }
            using (resp)
            {
                byte[] body;
                try
                {
                    body = await resp.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                }
                catch (HttpRequestException e)
                {
                    throw new MovanException(ErrorKind.Network, "reading the response failed: " + e.Message, e);
                }
                int status = (int)resp.StatusCode;
                if (status >= 200 && status < 300)
                {
                    if (body.Length == 0) return null;
                    try
                    {
                        return JsonValue.Parse(body);
                    }
                    catch (FormatException e)
                    {
                        throw new MovanException(ErrorKind.Protocol, "the account server's response is not JSON: " + e.Message, e);
                    }
                }
                throw HttpError(resp, status, body);
            }
        }

        private static MovanException HttpError(HttpResponseMessage resp, int status, byte[] body)
        {
            string code = "";
            string message;
            try
            {
                JsonValue v = JsonValue.Parse(body);
                code = Session.Req(v, "code").AsString();
                message = Session.Req(v, "message").AsString();
            }
            catch (Exception)
            {
                // Not the documented {"code","message"}: quote the start of the body.
                message = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, MaxQuotedBody));
            }
            TimeSpan? retryAfter = null;
            RetryConditionHeaderValue ra = resp.Headers.RetryAfter;
            if (ra != null && ra.Delta.HasValue) retryAfter = ra.Delta;
            return MovanException.FromHttp(status, code, message, retryAfter);
        }
    }
}

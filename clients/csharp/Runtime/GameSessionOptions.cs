using System;

namespace Movan.Client
{
    /// <summary>How a <see cref="GameSession"/> connects, reconnects and queues.</summary>
    public sealed class GameSessionOptions
    {
        /// <summary>Reconnect behaviour; default: on, 100 ms doubling to 2 s, for up to 30 s.</summary>
        public ReconnectPolicy Policy = new ReconnectPolicy();
        /// <summary>Refreshes the tokens before they expire, and when a reconnect finds the token expired. Null: no refresh.</summary>
        public AccountClient Account;
        /// <summary>Overrides the session's <c>sync_addr</c> (or <c>sync_udp_addr</c> over UDP); reconnects always go to the same server, where the seat is kept.</summary>
        public string SyncAddress;
        /// <summary>The AEAD; default <see cref="ManagedChaCha20Poly1305"/>.</summary>
        public IAead Aead;
        /// <summary>The transport; default <see cref="TcpTransport.Factory"/>. <see cref="UdpTransport.Factory"/> plays over UDP (KCP) at the login's <c>sync_udp_addr</c>.</summary>
        public ISyncTransportFactory Transport;
        /// <summary>Longest wait for one TCP connect (or UDP session set-up).</summary>
        public TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Longest wait for the handshake of one connection.</summary>
        public TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);
        /// <summary>Ping after this long without sending (or without hearing from the server); well within the server's default <c>sync.idle_timeout_secs</c> of 60.</summary>
        public TimeSpan Keepalive = TimeSpan.FromSeconds(15);
        /// <summary>A connection that sent nothing for this long (pings unanswered) is dead: drop it and reconnect. Zero: never.</summary>
        public TimeSpan DeadAfter = TimeSpan.FromSeconds(40);
        /// <summary>Wait between background refresh attempts after a failure.</summary>
        public TimeSpan RefreshRetry = TimeSpan.FromSeconds(30);
        /// <summary>The server's <c>sync.max_frame_bytes</c>: larger messages are refused before sending.</summary>
        public int MaxFrameBytes = 65536;
        /// <summary>Frames held beyond a gap while a reload fills it (more are dropped and reloaded again).</summary>
        public int MaxBufferedFrames = 24000;
        /// <summary>Events waiting for <see cref="GameSession.Poll"/> before the session stops reading the socket (and the server, if it lasts, drops the connection; the session then reconnects and reloads).</summary>
        public int MaxQueuedEvents = 4096;
        /// <summary>Messages waiting to be written before sends fail with <see cref="ErrorKind.QueueFull"/>.</summary>
        public int MaxQueuedSends = 1024;
        /// <summary>Called on a background thread whenever events were queued, to wake a loop that waits for them (not needed with <c>Update()</c>). Must return at once.</summary>
        public Action EventsQueued;
    }
}

using System;

namespace Movan.Client
{
    /// <summary>
    /// What a <see cref="GameSession"/> hands to the game, through <see cref="GameSession.Poll"/> or
    /// <see cref="GameSession.TryNextEvent"/>. Switch on the type: <c>case FrameEvent f:</c>.
    /// </summary>
    public abstract class GameEvent
    {
    }

    /// <summary>The next frame of the running game: across drops and reconnects 0, 1, 2, ... with none missing and none twice.</summary>
    public sealed class FrameEvent : GameEvent
    {
        public FrameEvent(Frame frame) { Frame = frame; }
        public Frame Frame { get; private set; }
    }

    /// <summary>A new game started; frames count from 0. The copy a reconnect brings is not shown again.</summary>
    public sealed class GameStartEvent : GameEvent
    {
        public GameStartEvent(GameStart start) { Start = start; }
        public GameStart Start { get; private set; }
    }

    /// <summary>The room changed (join, leave, ready, drop, start).</summary>
    public sealed class RoomStateEvent : GameEvent
    {
        public RoomStateEvent(RoomState state) { State = state; }
        public RoomState State { get; private set; }
    }

    /// <summary>The answer to <c>room_leave</c>: the player is out of the room; close after it to leave cleanly.</summary>
    public sealed class RoomLeftEvent : GameEvent
    {
        public RoomLeftEvent(RoomLeft left) { Left = left; }
        public RoomLeft Left { get; private set; }
    }

    /// <summary>The game ended; the player is in no room any more.</summary>
    public sealed class GameOverEvent : GameEvent
    {
        public GameOverEvent(GameOver over) { Over = over; }
        public GameOver Over { get; private set; }
    }

    /// <summary>The answer to a <c>ping</c> (the session's own idle pings included); see <see cref="Pong.RoundTrip"/> and <see cref="Pong.ClockOffset"/>.</summary>
    public sealed class PongEvent : GameEvent
    {
        public PongEvent(Pong pong) { Pong = pong; }
        public Pong Pong { get; private set; }
    }

    /// <summary>The players' checksums for a frame disagree (<see cref="GameSession.SendChecksum"/>): see
    /// <see cref="Desync.Majority"/> and <see cref="Desync.Diverged"/>.</summary>
    public sealed class DesyncEvent : GameEvent
    {
        public DesyncEvent(Desync desync) { Desync = desync; }
        public Desync Desync { get; private set; }
    }

    /// <summary>
    /// An <c>error</c> from the server (a refused request, or why it is about to close), or a gap the session could
    /// not fill (code <c>history_expired</c>, <c>timeout</c>, <c>protocol</c>: frames were skipped, and the message says which).
    /// </summary>
    public sealed class ErrorEvent : GameEvent
    {
        public ErrorEvent(ServerError error) { Error = error; }
        public ServerError Error { get; private set; }
    }

    /// <summary>The connection dropped and the session is reconnecting: attempt 1 right after the drop, then one per failed attempt. Sends fail until <see cref="ReconnectedEvent"/>.</summary>
    public sealed class ReconnectingEvent : GameEvent
    {
        public ReconnectingEvent(int attempt, string reason)
        {
            Attempt = attempt;
            Reason = reason;
        }

        /// <summary>The attempt about to be made.</summary>
        public int Attempt { get; private set; }
        /// <summary>Why the connection or the previous attempt ended.</summary>
        public string Reason { get; private set; }
    }

    /// <summary>Connected and bound again; when a game runs, the frames missed since <see cref="ReloadFrom"/> follow as <see cref="FrameEvent"/>s.</summary>
    public sealed class ReconnectedEvent : GameEvent
    {
        public ReconnectedEvent(int attempts, long reloadFrom)
        {
            Attempts = attempts;
            ReloadFrom = reloadFrom;
        }

        /// <summary>Attempts it took.</summary>
        public int Attempts { get; private set; }
        /// <summary>The first frame reloaded, or -1 when no game runs.</summary>
        public long ReloadFrom { get; private set; }
    }

    /// <summary>The session was refreshed (new access and refresh tokens): store <see cref="Session"/> if you persist it, the old refresh token is used up.</summary>
    public sealed class SessionRefreshedEvent : GameEvent
    {
        public SessionRefreshedEvent(Session session) { Session = session; }
        public Session Session { get; private set; }
    }

    /// <summary>A background token refresh failed; the connection itself is unaffected.</summary>
    public sealed class RefreshFailedEvent : GameEvent
    {
        public RefreshFailedEvent(MovanException error, bool willRetry)
        {
            Error = error;
            WillRetry = willRetry;
        }

        public MovanException Error { get; private set; }
        /// <summary>False when retrying cannot help (the refresh token was refused, or the player is banned).</summary>
        public bool WillRetry { get; private set; }
    }

    /// <summary>The session ended for good; always the last event.</summary>
    public sealed class ClosedEvent : GameEvent
    {
        public ClosedEvent(MovanException error) { Error = error; }
        /// <summary>Null after <see cref="GameSession.Close"/>; else why: a final server error (<c>replaced</c>, <c>session_revoked</c>, <c>banned</c>, <c>shutting_down</c>, ...), a crypto failure, or the last reconnect failure.</summary>
        public MovanException Error { get; private set; }
    }

    /// <summary>How a <see cref="GameSession"/> reconnects.</summary>
    public sealed class ReconnectPolicy
    {
        /// <summary>Reconnect at all; with false a drop ends the session.</summary>
        public bool Enabled = true;
        /// <summary>Stop trying after this long without a connection. Match it to the server's <c>sync.reconnect_grace_secs</c>: later, the seat is gone anyway.</summary>
        public TimeSpan GiveUpAfter = TimeSpan.FromSeconds(30);
        /// <summary>Wait before the first attempt; doubled after each failure up to <see cref="MaxDelay"/>.</summary>
        public TimeSpan InitialDelay = TimeSpan.FromMilliseconds(100);
        /// <summary>Longest wait between attempts.</summary>
        public TimeSpan MaxDelay = TimeSpan.FromSeconds(2);
        /// <summary>Time allowed for a reload of missed frames.</summary>
        public TimeSpan ReloadTimeout = TimeSpan.FromSeconds(30);

        /// <summary>No reconnects: the first drop ends the session.</summary>
        public static ReconnectPolicy Disabled()
        {
            return new ReconnectPolicy { Enabled = false };
        }
    }
}

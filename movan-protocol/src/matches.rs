//! Finished games: why a game ended ([`EndReason`], in `game_over` and in match records), and the match record the
//! account server stores and lists in `GET /v1/me/matches` ([`MatchRecord`]: the sync server's
//! [`MatchReport`] and the node that ran it).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rpc::MatchReport;

/// Why a game ended (`reason` of `game_over`, `end_reason` of a match). docs/protocol.md §5.5 says when each happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Every member left (and none came back within the reconnect grace).
    AllLeft,
    /// The game reached `sync.max_game_secs`.
    MaxDuration,
    /// The room's rules ended it.
    EndedByRoom,
    /// The server is shutting down.
    Shutdown,
    /// The players' checksums disagreed and the room's rules ended the game (`Room::on_desync`).
    Desync,
    /// An admin ended it (`POST /v1/admin/nodes/{node_id}/rooms/{room_id}/end`); `results` is `{"reason": ...}`.
    EndedByAdmin,
}

impl EndReason {
    /// Every reason, in declaration order.
    pub const ALL: [Self; 6] =
        [Self::AllLeft, Self::MaxDuration, Self::EndedByRoom, Self::Shutdown, Self::Desync, Self::EndedByAdmin];

    /// The name on the wire, e.g. `all_left`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllLeft => "all_left",
            Self::MaxDuration => "max_duration",
            Self::EndedByRoom => "ended_by_room",
            Self::Shutdown => "shutdown",
            Self::Desync => "desync",
            Self::EndedByAdmin => "ended_by_admin",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for EndReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EndReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One finished game as the account server stores it and lists it: the report and the node that sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// The game, as the sync server reported it.
    #[serde(flatten)]
    pub report: MatchReport,
    /// The sync server that ran it (its node id).
    #[serde(default)]
    pub node_id: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reasons_are_their_snake_case_names() {
        for reason in EndReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            assert_eq!(serde_json::from_str::<EndReason>(&json).unwrap(), reason);
        }
        assert_eq!(EndReason::AllLeft, "all_left");
        assert!(serde_json::from_str::<EndReason>("\"bored\"").is_err());
    }

    #[test]
    fn a_record_is_the_report_and_the_node_in_one_object() {
        let text = r#"{"match_id":"lobby-7-1f3a9c0e5b7d2a41","room_id":"lobby-7","players":["1001","1002"],"frame_count":1200,"duration_secs":60.02,"end_reason":"all_left","results":null,"started_at":1700000000.0,"ended_at":1700000060.02,"node_id":"sync-1"}"#;
        let record: MatchRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.report.end_reason, EndReason::AllLeft);
        assert_eq!((record.node_id.as_str(), record.report.frame_count), ("sync-1", 1200));
        assert_eq!(record.report.ended_at, 1_700_000_060.02);
        let again: MatchRecord = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}

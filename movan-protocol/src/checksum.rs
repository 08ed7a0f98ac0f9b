//! Desync detection: what clients report (`sync_checksum`) and what the server answers when they disagree
//! (`desync`). docs/protocol.md §4.7 and §5.8 describe the exchange.

use serde::{Deserialize, Serialize};

/// Longest accepted `sync_checksum` hash, in bytes.
pub const MAX_CHECKSUM_LEN: usize = 64;

/// `room_left.reason`: the room's rules dropped this player because its checksum disagreed with the majority's.
pub const LEFT_DESYNC: &str = "desync";

/// One group of players who reported the same hash for a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashGroup {
    /// The hash they reported.
    pub hash: String,
    /// Who reported it, in uid order.
    pub uids: Vec<String>,
}

/// `desync`: the players' checksums for `frame` disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desync {
    /// The frame the hashes are of (the state after applying frames `0..=frame`).
    pub frame: u64,
    /// Every distinct hash reported, the largest group first (ties by hash).
    pub groups: Vec<HashGroup>,
    /// The hash of the one largest group, if one group is larger than every other; the players outside it diverged.
    pub majority: Option<String>,
}

impl Desync {
    /// Groups `(uid, hash)` reports; `None` when they all agree (or there are fewer than two).
    pub fn compare<'a>(frame: u64, reports: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut by_hash: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
        for (uid, hash) in reports {
            by_hash.entry(hash).or_default().push(uid.to_owned());
        }
        if by_hash.len() < 2 {
            return None;
        }
        let mut groups: Vec<HashGroup> = by_hash
            .into_iter()
            .map(|(hash, mut uids)| {
                uids.sort();
                HashGroup { hash: hash.to_owned(), uids }
            })
            .collect();
        // Stable: equal sizes stay in hash order.
        groups.sort_by_key(|g| std::cmp::Reverse(g.uids.len()));
        let majority = (groups[0].uids.len() > groups[1].uids.len()).then(|| groups[0].hash.clone());
        Some(Self { frame, groups, majority })
    }

    /// The players outside the majority group (none when there is no majority).
    pub fn diverged(&self) -> impl Iterator<Item = &str> {
        let majority = self.majority.as_deref();
        self.groups
            .iter()
            .filter(move |g| majority.is_some_and(|m| m != g.hash))
            .flat_map(|g| g.uids.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(data: &str) -> Result<crate::Request, crate::ErrorCode> {
        let body = format!(r#"{{"uid":"7","extra_data":{{"proto":"sync_checksum"{data}}}}}"#);
        crate::parse_client_message(body.as_bytes()).map(|m| m.request).map_err(|e| e.code)
    }

    #[test]
    fn sync_checksum_parses_and_refuses_with_the_documented_codes() {
        match parse(r#","data":{"frame":60,"hash":"9f2c"}"#).unwrap() {
            crate::Request::Checksum { frame, hash } => assert_eq!((frame, hash.as_str()), (60, "9f2c")),
            other => panic!("{other:?}"),
        }
        let longest = format!(r#","data":{{"frame":0,"hash":"{}"}}"#, "h".repeat(MAX_CHECKSUM_LEN));
        assert!(parse(&longest).is_ok());
        let bad = crate::ErrorCode::BadMessage;
        let too_long = format!(r#","data":{{"frame":0,"hash":"{}"}}"#, "h".repeat(MAX_CHECKSUM_LEN + 1));
        assert_eq!(parse(&too_long).unwrap_err(), bad);
        assert_eq!(parse("").unwrap_err(), bad);
        assert_eq!(parse(r#","data":{"frame":60,"hash":""}"#).unwrap_err(), bad);
        assert_eq!(parse(r#","data":{"frame":-1,"hash":"a"}"#).unwrap_err(), bad);
        assert_eq!(parse(r#","data":{"frame":60,"hash":5}"#).unwrap_err(), bad);
        assert_eq!(parse(r#","data":[60,"a"]"#).unwrap_err(), bad);
        let e = crate::parse_client_message(br#"{"uid":"7","extra_data":{"proto":"sync_checksum","data":{}}}"#);
        assert_eq!(e.unwrap_err().proto.as_deref(), Some("sync_checksum"));
    }

    #[test]
    fn agreeing_reports_are_no_desync() {
        assert_eq!(Desync::compare(60, [("1", "a"), ("2", "a"), ("3", "a")]), None);
        assert_eq!(Desync::compare(60, [("1", "a")]), None);
        assert_eq!(Desync::compare(60, []), None);
    }

    #[test]
    fn the_majority_names_who_diverged() {
        let d = Desync::compare(120, [("1004", "ff"), ("1001", "ab"), ("1003", "ab"), ("1002", "ab")]).unwrap();
        assert_eq!(d.majority.as_deref(), Some("ab"));
        assert_eq!(
            d.groups[0],
            HashGroup { hash: "ab".into(), uids: vec!["1001".into(), "1002".into(), "1003".into()] }
        );
        assert_eq!(d.diverged().collect::<Vec<_>>(), ["1004"]);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"frame":120,"groups":[{"hash":"ab","uids":["1001","1002","1003"]},{"hash":"ff","uids":["1004"]}],"majority":"ab"}"#
        );
    }

    #[test]
    fn a_tie_has_no_majority_and_nobody_diverged() {
        let d = Desync::compare(60, [("1", "b"), ("2", "a")]).unwrap();
        assert_eq!(d.majority, None);
        assert_eq!(d.groups.iter().map(|g| g.hash.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(d.diverged().count(), 0);
        assert!(serde_json::to_string(&d).unwrap().ends_with(r#""majority":null}"#));
    }
}

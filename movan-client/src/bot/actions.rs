//! What a bot sends (`movan-bot --action`) and how it finds its own actions again in the frames.

use std::collections::HashMap;

use serde_json::Value;
use serde_json::value::RawValue;

/// The `action_data` a bot sends, as JSON text with placeholders: `{seq}` becomes the action's number (0, 1, 2, ...
/// per bot), `{bot}` the bot's index. With `{seq}` as a JSON number somewhere in it, the bot checks that every
/// action it sent appears exactly once; without, it can only count them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTemplate {
    text: String,
    /// JSON pointer of the `{seq}` number in a rendered action, if the template has one.
    seq_pointer: Option<String>,
}

impl ActionTemplate {
    /// `{"seq":{seq},"bot":{bot}}`: numbered actions, checked exactly once each.
    pub const DEFAULT: &'static str = r#"{"seq":{seq},"bot":{bot}}"#;

    /// Checks `text` renders to JSON, and where its `{seq}` lands.
    pub fn parse(text: &str) -> Result<Self, String> {
        let template = Self { text: text.to_owned(), seq_pointer: None };
        let parse = |seq: u64, bot: usize| {
            let rendered = template.render(seq, bot);
            serde_json::from_str::<Value>(&rendered).map_err(|e| {
                format!("--action {text:?} is not JSON once its placeholders are filled ({rendered}): {e}")
            })
        };
        let first = parse(0, 0)?;
        parse(1, 1)?;
        if !text.contains("{seq}") {
            return Ok(template);
        }
        let pointer = seq_pointer(&first, &parse(1, 0)?, "").ok_or_else(|| {
            format!("--action {text:?}: {{seq}} must stand for a JSON number (as in {})", Self::DEFAULT)
        })?;
        Ok(Self { seq_pointer: Some(pointer), ..template })
    }

    /// The action number `seq` of bot `bot`.
    pub fn render(&self, seq: u64, bot: usize) -> String {
        self.text.replace("{seq}", &seq.to_string()).replace("{bot}", &bot.to_string())
    }

    /// Whether own actions can be told apart by their `{seq}`.
    pub fn numbered(&self) -> bool {
        self.seq_pointer.is_some()
    }

    /// The template text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Default for ActionTemplate {
    fn default() -> Self {
        Self::parse(Self::DEFAULT).expect("the default template is valid")
    }
}

/// Where `a` holds 0 and `b` holds 1 (the renderings with seq 0 and 1): the `{seq}` number, if that is the only
/// difference.
fn seq_pointer(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.as_u64() == Some(0) && y.as_u64() == Some(1) => Some(at.to_owned()),
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            let mut found = None;
            for (key, xv) in x {
                let yv = y.get(key)?;
                if xv != yv {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    found = Some(seq_pointer(xv, yv, &format!("{at}/{escaped}"))?);
                }
            }
            found
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            let mut found = None;
            for (i, (xv, yv)) in x.iter().zip(y).enumerate() {
                if xv != yv {
                    found = Some(seq_pointer(xv, yv, &format!("{at}/{i}"))?);
                }
            }
            found
        }
        _ => None,
    }
}

/// How often each of one bot's actions appeared in frames.
#[derive(Debug, Default)]
pub(crate) struct ActionTally {
    /// Actions sent, numbered `0..sent`.
    pub(crate) sent: u64,
    /// Appearances per `seq` (numbered templates).
    seen: HashMap<u64, u32>,
    /// Own actions seen (unnumbered templates).
    seen_unnumbered: u64,
    /// The game ended (by the room, or its maximum length) before the bot stopped sending, so the last actions
    /// sent may have had no frame left to land in.
    pub(crate) ended_early: bool,
}

impl ActionTally {
    /// Counts one own action found in a frame; refuses one this bot could not have sent.
    pub(crate) fn record(&mut self, template: &ActionTemplate, action_data: &RawValue) -> Result<(), String> {
        let Some(pointer) = &template.seq_pointer else {
            self.seen_unnumbered += 1;
            return Ok(());
        };
        let seq = serde_json::from_str::<Value>(action_data.get())
            .ok()
            .and_then(|v| v.pointer(pointer).and_then(Value::as_u64))
            .ok_or_else(|| format!("own action {} has no number at {pointer}", action_data.get()))?;
        *self.seen.entry(seq).or_default() += 1;
        Ok(())
    }

    pub(crate) fn seen_total(&self) -> u64 {
        self.seen.values().map(|&n| u64::from(n)).sum::<u64>() + self.seen_unnumbered
    }

    /// The number after the last one seen: actions from it on were sent after the last frame they could land in
    /// when the game ended early.
    fn landed_before(&self) -> u64 {
        self.seen.keys().max().map_or(0, |&seq| seq + 1)
    }

    /// Actions sent that no frame holds. Those after the last one seen do not count when the game ended early.
    /// (While nothing numbered was seen, both kinds of template give the same answers here.)
    pub(crate) fn missing(&self) -> u64 {
        if self.seen.is_empty() {
            return if self.ended_early { 0 } else { self.sent.saturating_sub(self.seen_unnumbered) };
        }
        let end = if self.ended_early { self.landed_before().min(self.sent) } else { self.sent };
        (0..end).filter(|seq| !self.seen.contains_key(seq)).count() as u64
    }

    /// Actions sent after the last frame of a game that ended early: neither seen nor missing.
    pub(crate) fn unconfirmed(&self) -> u64 {
        match (self.ended_early, self.seen.is_empty()) {
            (false, _) => 0,
            (true, true) => self.sent.saturating_sub(self.seen_unnumbered),
            (true, false) => self.sent.saturating_sub(self.landed_before()),
        }
    }

    /// Actions that appeared in more than one frame slot (numbered), or more own actions than were sent
    /// (unnumbered).
    pub(crate) fn duplicated(&self) -> u64 {
        self.seen.values().filter(|&&n| n > 1).count() as u64 + self.seen_unnumbered.saturating_sub(self.sent)
    }

    /// Numbers seen that were never sent.
    pub(crate) fn unknown(&self) -> u64 {
        self.seen.keys().filter(|&&seq| seq >= self.sent).count() as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn templates_render_and_find_their_number() {
        let t = ActionTemplate::default();
        assert_eq!(t.render(7, 2), r#"{"seq":7,"bot":2}"#);
        assert_eq!(t.seq_pointer.as_deref(), Some("/seq"));
        let t = ActionTemplate::parse(r#"{"move": [1, {seq}], "who": "{bot}"}"#).unwrap();
        assert_eq!(t.seq_pointer.as_deref(), Some("/move/1"));
        let t = ActionTemplate::parse(r#"{"points": 1}"#).unwrap();
        assert!(!t.numbered());
        assert_eq!(t.render(5, 5), r#"{"points": 1}"#);
        let e = ActionTemplate::parse(r#"{"points": }"#).unwrap_err();
        assert!(e.contains("is not JSON"), "{e}");
        let e = ActionTemplate::parse(r#"{"s": "n{seq}"}"#).unwrap_err();
        assert!(e.contains("must stand for a JSON number"), "{e}");
    }

    #[test]
    fn numbered_tally_counts_missing_duplicated_and_unknown() {
        let template = ActionTemplate::default();
        let mut t = ActionTally { sent: 4, ..ActionTally::default() };
        for seq in [0, 1, 1, 3, 7] {
            t.record(&template, &raw(&format!(r#"{{"seq":{seq},"bot":0}}"#))).unwrap();
        }
        assert!(t.record(&template, &raw(r#"{"move":1}"#)).is_err());
        assert_eq!(t.seen_total(), 5);
        assert_eq!(t.missing(), 1, "seq 2");
        assert_eq!(t.duplicated(), 1, "seq 1");
        assert_eq!(t.unknown(), 1, "seq 7");
    }

    #[test]
    fn an_early_end_forgives_the_tail_only() {
        let template = ActionTemplate::default();
        let mut t = ActionTally { sent: 10, ended_early: true, ..ActionTally::default() };
        for seq in [0, 1, 3, 4] {
            t.record(&template, &raw(&format!(r#"{{"seq":{seq},"bot":0}}"#))).unwrap();
        }
        assert_eq!((t.missing(), t.unconfirmed()), (1, 5), "seq 2 is a hole; 5 to 9 came after the last frame");
        t.ended_early = false;
        assert_eq!((t.missing(), t.unconfirmed()), (6, 0));
    }

    #[test]
    fn unnumbered_tally_counts() {
        let template = ActionTemplate::parse(r#"{"points": 1}"#).unwrap();
        let mut t = ActionTally { sent: 5, ..ActionTally::default() };
        for _ in 0..3 {
            t.record(&template, &raw(r#"{"points":1}"#)).unwrap();
        }
        assert_eq!((t.seen_total(), t.missing(), t.duplicated(), t.unconfirmed()), (3, 2, 0, 0));
        t.ended_early = true;
        assert_eq!((t.missing(), t.unconfirmed()), (0, 2));
        let mut t = ActionTally { sent: 1, ..ActionTally::default() };
        t.record(&template, &raw("{}")).unwrap();
        t.record(&template, &raw("{}")).unwrap();
        assert_eq!(t.duplicated(), 1);
        let t = ActionTally { sent: 3, ..ActionTally::default() };
        assert_eq!(t.missing(), 3, "nothing seen");
    }
}

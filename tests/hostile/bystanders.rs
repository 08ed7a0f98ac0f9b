//! The bystander game: must keep ticking, untouched, whatever the attackers do.

use super::*;

/// A two-player game in its own room, watched by one task per player until [`Bystanders::finish`].
pub(crate) struct Bystanders {
    room: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Watched>>,
    t0: f64,
    interval: f64,
}

/// What one bystander saw.
pub(crate) struct Watched {
    uid: String,
    log: FrameLog,
    problems: Vec<String>,
    /// Actions this player sent (each `{"by": i, "seq": n}`, n = 0..sent).
    sent: u64,
    /// The frames that were due when the test asked the bystanders to stop.
    due: u64,
}

impl Bystanders {
    pub(crate) async fn start(cluster: &Cluster, room: &str) -> Self {
        let names = [format!("{room}-a"), format!("{room}-b")];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_, clients, t0, interval) = start_game(cluster, room, &names).await;
        let (stop, _) = watch::channel(false);
        let tasks = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(watch_game(i, c, stop.subscribe(), t0, interval)))
            .collect();
        Self { room: room.to_owned(), stop, tasks, t0, interval }
    }

    /// Stops the watchers and checks that both players got every frame due by now, from frame 0 with no gap,
    /// byte-identical, with every action they sent exactly once, no error and no disconnection.
    pub(crate) async fn finish(self) {
        // Let the game run at least 1.5 s (30 frames) even when the attacks were quicker.
        let ran = unix_now() - self.t0;
        if ran < 1.5 {
            tokio::time::sleep(Duration::from_secs_f64(1.5 - ran)).await;
        }
        self.stop.send_replace(true);
        let mut seen = Vec::new();
        for task in self.tasks {
            let w = tokio::time::timeout(Duration::from_secs(30), task).await.expect("bystander hung").unwrap();
            assert!(w.problems.is_empty(), "bystander {} in room {}: {:?}", w.uid, self.room, w.problems);
            assert!(
                w.log.next_frame() >= w.due,
                "bystander {}: {} consecutive frames, but {} were due",
                w.uid,
                w.log.next_frame(),
                w.due
            );
            assert!(w.sent >= 1, "bystander {} sent actions", w.uid);
            seen.push(w);
        }
        let elapsed = unix_now() - self.t0;
        let due_now = (elapsed / self.interval).floor() as u64;
        for w in &seen {
            // At 20 Hz: every frame of the elapsed time, give or take the few broadcast while we collected.
            assert!(
                w.log.next_frame() + 20 >= due_now,
                "bystander {}: only {} frames after {elapsed:.2} s ({due_now} due)",
                w.uid,
                w.log.next_frame()
            );
        }
        let common = seen.iter().map(|w| w.log.len()).min().unwrap();
        for k in 0..common {
            assert_eq!(
                seen[0].log.frames()[k].raw.get(),
                seen[1].log.frames()[k].raw.get(),
                "both bystanders got the same bytes for frame {k}"
            );
        }
        eprintln!(
            "bystanders in {}: {} and {} consecutive frames over {elapsed:.2} s, {} + {} actions, no error",
            self.room,
            seen[0].log.len(),
            seen[1].log.len(),
            seen[0].sent,
            seen[1].sent
        );
    }
}

/// One bystander: sends an action every 400 ms (which also keeps the idle timeout away), collects frames; once
/// told to stop, pings instead and keeps reading until every frame due at that moment and every own action arrived.
pub(crate) async fn watch_game(
    i: usize,
    client: SyncClient,
    mut stop: watch::Receiver<bool>,
    t0: f64,
    interval: f64,
) -> Watched {
    let uid = client.uid().to_owned();
    let (sender, mut events) = client.split();
    let mut w = Watched { uid: uid.clone(), log: FrameLog::new(), problems: Vec::new(), sent: 0, due: 0 };
    let mut own: BTreeSet<u64> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    let mut stopping = false;
    let mut give_up = Instant::now() + Duration::from_secs(3600);
    loop {
        if stopping && w.log.next_frame() >= w.due && own.len() as u64 == w.sent {
            break;
        }
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                w.due = ((unix_now() - t0) / interval).floor() as u64;
                give_up = Instant::now() + WAIT;
            }
            _ = tick.tick() => {
                let sent = if stopping {
                    sender.ping().await
                } else {
                    w.sent += 1;
                    sender.send_action(&json!({ "by": i, "seq": w.sent - 1 })).await
                };
                if let Err(e) = sent {
                    w.problems.push(format!("send failed: {e}"));
                    break;
                }
            }
            () = tokio::time::sleep_until(give_up) => {
                w.problems.push(format!(
                    "gave up: {} frames of {} due, {} of {} own actions seen",
                    w.log.next_frame(), w.due, own.len(), w.sent
                ));
                break;
            }
            event = events.next_event() => match event {
                Some(ServerEvent::Frame(f)) => {
                    for a in f.actions.iter().filter(|a| a.uid == uid) {
                        let v: Value = serde_json::from_str(a.action_data.get()).unwrap();
                        let seq = v["seq"].as_u64().unwrap();
                        if !own.insert(seq) {
                            w.problems.push(format!("own action {seq} appeared twice"));
                        }
                    }
                    if let Err(e) = w.log.push(f) {
                        w.problems.push(format!("frame log refused a frame: {e}"));
                        break;
                    }
                }
                Some(ServerEvent::Error(e)) => w.problems.push(format!("error {:?}: {}", e.code, e.message)),
                Some(_) => {}
                None => {
                    w.problems.push(format!("connection closed: {:?}", events.close_reason()));
                    break;
                }
            }
        }
    }
    if own.iter().copied().ne(0..w.sent) && w.problems.is_empty() {
        w.problems.push(format!("own actions seen {own:?}, sent 0..{}", w.sent));
    }
    w
}

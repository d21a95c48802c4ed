//! No test may hang: the registry of live child process groups and the `Watchdog` that kills them and aborts.

use super::sys::{send_signal, SIGKILL};
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

fn live_groups() -> &'static Mutex<HashSet<i32>> {
    static LIVE: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

pub(super) fn register_group(pgid: i32) {
    live_groups().lock().unwrap().insert(pgid);
}

pub(super) fn unregister_group(pgid: i32) {
    live_groups().lock().unwrap().remove(&pgid);
}

fn kill_all_groups() {
    if let Ok(g) = live_groups().lock() {
        for &pgid in g.iter() {
            send_signal(-pgid, SIGKILL);
        }
    }
}

/// Aborts the whole test binary if not dropped within `secs`: a test must never hang.
pub struct Watchdog {
    tx: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub fn new(name: &str, secs: u64) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let name = name.to_string();
        thread::Builder::new()
            .name(format!("watchdog-{name}"))
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
                    eprintln!(
                        "\nWATCHDOG: test `{name}` did not finish within {secs} s: killing its children and aborting the test binary"
                    );
                    kill_all_groups();
                    std::process::abort();
                }
            })
            .expect("spawn watchdog");
        Watchdog { tx: Some(tx) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Disconnecting wakes the watchdog thread, which then ends.
        self.tx.take();
    }
}

//! rust_threads: std threads, mpsc channels and a Mutex<u64>, run under `mtcp launch`.
//!
//! PRODUCERS threads each send consecutive numbers 1, 2, 3, ... (tagged with their index)
//! over one mpsc channel to a consumer thread, and add 1 to a shared Mutex<u64> for every
//! message; the consumer checks that each producer's numbers arrive in order with none
//! missing, and answers every 64th message on a second channel, which the producer waits
//! for (so traffic goes both ways). A thread_local value is checked in every thread.
//!
//! Main prints `start PID`, then every ~50 ms `count N` (N = 1, 2, ...) and
//! `traffic RECEIVED MUTEX` (messages received so far, the mutex-protected counter), after
//! checking neither went down. Once the file STOP (argv[1]) exists it stops the
//! producers, joins every thread, checks that the totals agree (messages sent = received
//! = the mutex counter) and prints `done OK` (exit 0). `BAD ...` and exit 3 on any problem.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const PRODUCERS: usize = 3;

thread_local! {
    static TLS: Cell<u64> = const { Cell::new(0) };
}

fn bad(what: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "BAD {what}");
    let _ = out.flush();
    std::process::exit(3)
}

fn main() {
    let stop_file = std::env::args().nth(1).unwrap_or_else(|| bad("usage: rust_threads STOP"));
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "start {}", std::process::id());
        let _ = out.flush();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(Mutex::new(0u64));
    let received = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<(usize, u64)>();

    let mut acks = Vec::new();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let (ack_tx, ack_rx) = mpsc::sync_channel::<u64>(1);
        acks.push(ack_tx);
        let tx = tx.clone();
        let stop = stop.clone();
        let counter = counter.clone();
        producers.push(
            thread::Builder::new()
                .name(format!("producer{p}"))
                .spawn(move || {
                    TLS.with(|t| t.set(1000 + p as u64));
                    let mut n = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        n += 1;
                        *counter.lock().unwrap() += 1;
                        tx.send((p, n)).unwrap_or_else(|_| bad("send"));
                        if n % 64 == 0 {
                            match ack_rx.recv_timeout(Duration::from_secs(60)) {
                                Ok(a) if a == n => {}
                                Ok(a) => bad(&format!("producer {p}: ack {a} for {n}")),
                                Err(e) => bad(&format!("producer {p}: no ack for {n}: {e}")),
                            }
                            thread::sleep(Duration::from_millis(2));
                        }
                        if TLS.with(|t| t.get()) != 1000 + p as u64 {
                            bad(&format!("producer {p}: thread_local changed"));
                        }
                    }
                    n
                })
                .unwrap(),
        );
    }
    drop(tx);

    let recv2 = received.clone();
    let consumer = thread::Builder::new()
        .name("consumer".into())
        .spawn(move || {
            TLS.with(|t| t.set(77));
            let mut next = [1u64; PRODUCERS];
            // Ends when every producer has dropped its sender.
            for (p, n) in rx {
                if n != next[p] {
                    bad(&format!("consumer: producer {p} sent {n}, expected {}", next[p]));
                }
                next[p] += 1;
                recv2.fetch_add(1, Ordering::AcqRel);
                if n % 64 == 0 {
                    acks[p].send(n).unwrap_or_else(|_| bad("ack send"));
                }
                if TLS.with(|t| t.get()) != 77 {
                    bad("consumer: thread_local changed");
                }
            }
            next.iter().map(|n| n - 1).sum::<u64>()
        })
        .unwrap();

    let (mut last_r, mut last_m) = (0u64, 0u64);
    let mut count = 0u64;
    loop {
        count += 1;
        let r = received.load(Ordering::Acquire);
        let m = *counter.lock().unwrap();
        if r < last_r || m < last_m {
            bad(&format!("totals went down: {r} {m} after {last_r} {last_m}"));
        }
        last_r = r;
        last_m = m;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "count {count}\ntraffic {r} {m}");
            let _ = out.flush();
        }
        if std::path::Path::new(&stop_file).exists() {
            break;
        }
        if count > 4000 {
            bad("no stop file after 4000 counts");
        }
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Release);
    let sent: u64 = producers.into_iter().map(|h| h.join().unwrap_or_else(|_| bad("producer panicked"))).sum();
    let got = consumer.join().unwrap_or_else(|_| bad("consumer panicked"));
    let m = *counter.lock().unwrap();
    if sent != got || got != m || received.load(Ordering::Acquire) != got {
        bad(&format!("totals: sent {sent} received {got} mutex {m}"));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "total {sent}\ndone OK");
    let _ = out.flush();
}

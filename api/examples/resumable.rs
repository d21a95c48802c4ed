//! A computation that checkpoints itself with mtcp's Rust API, reads its own image back
//! with the crate's reader, and after a restart knows that it was restarted.
//!
//! ```sh
//! cargo build --release --example resumable -p mtcp-api
//! mtcp launch --dir /tmp/ckpt -- target/release/examples/resumable 100 30
//! # ... kill it after step 30, then:
//! mtcp restart /tmp/ckpt/ckpt_resumable_<pid>.mtcp   # goes on from step 31
//! ```
//!
//! usage: resumable [STEPS [CHECKPOINT_AT]] (default 100 steps, checkpoint after step
//! 30). Prints `restarts N` at start, `step N HASH` after each step, at CHECKPOINT_AT
//! either `checkpointed PATH` and `image PID THREADS REGIONS verified` or, in a
//! restarted process, `restarted PATH restarts N`, and finally `result HASH`. Without
//! mtcp it prints `no runtime` at the checkpoint and computes the same result.

use std::time::Duration;

use mtcp_api::{Checkpoint, Error, Image};

/// Eight MiB of state that every step stirs: lost or changed memory changes the result.
struct State {
    table: Vec<u64>,
    rng: u64,
    hash: u64,
}

impl State {
    fn new() -> State {
        let mut s = State {
            table: vec![0; 1 << 20],
            rng: 0x2545_f491_4f6c_dd1d,
            hash: 0xcbf2_9ce4_8422_2325,
        };
        for i in 0..s.table.len() {
            s.table[i] = s.next();
        }
        s
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn step(&mut self) {
        for _ in 0..4096 {
            let i = (self.next() % self.table.len() as u64) as usize;
            self.table[i] = self.table[i].wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        for w in self.table.iter().step_by(512) {
            self.hash = (self.hash ^ w).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("a number"));
    let steps = args.next().unwrap_or(100);
    let checkpoint_at = args.next().unwrap_or(30);
    let mut state = State::new();
    println!("restarts {}", mtcp_api::restarts());
    for n in 1..=steps {
        state.step();
        println!("step {n} {:016x}", state.hash);
        if n == checkpoint_at {
            save();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("result {:016x}", state.hash);
}

/// Checkpoints, and says which way the call returned.
fn save() {
    match mtcp_api::checkpoint() {
        Ok(Checkpoint::Written(path)) => {
            println!("checkpointed {}", path.display());
            // The image just written, read and checked by the reader `mtcp inspect` uses.
            let image = Image::open(&path).and_then(|i| i.verify().map(|()| i));
            match image {
                Ok(i) => println!(
                    "image {} {} {} verified",
                    i.process().vpid,
                    i.thread_count(),
                    i.region_count()
                ),
                Err(e) => println!("BAD image: {e}"),
            }
        }
        Ok(Checkpoint::Restarted(path)) => {
            println!("restarted {} restarts {}", path.display(), mtcp_api::restarts());
        }
        Err(Error::NoRuntime) => println!("no runtime"),
        Err(e) => println!("BAD checkpoint: {e}"),
    }
}

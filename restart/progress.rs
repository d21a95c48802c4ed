//! Progress of the map step on stderr, in the style `mtcp restart` chose
//! (`--progress=terminal|lines|json`), drawn with the meter the tool uses
//! (`mtcp_core::progress::Meter`); with `json`, also the object that says the restore is
//! done, just before the program runs again. Off unless asked for.

use core::fmt::Write;

use mtcp_core::fmt::{FmtBuf, JsonStr};
use mtcp_core::global::Global;
use mtcp_core::progress::{Figures, Meter, Seconds, Style};
use mtcp_core::sys;

/// Bytes read between two looks at the clock.
const CLOCK_EVERY: u64 = 1 << 20;

struct State {
    meter: Option<Meter>,
    json: bool,
    figures: Figures,
    start_ns: u64,
    unclocked: u64,
}

/// mtcp_restart is single-threaded: only its one thread touches this, one call at a time.
static STATE: Global<State> = Global::new(State {
    meter: None,
    json: false,
    figures: Figures {
        done: 0,
        total: 0,
        elapsed_ns: 0,
    },
    start_ns: 0,
    unclocked: 0,
});

fn state() -> &'static mut State {
    // SAFETY: one thread, and no caller keeps the reference across another call.
    unsafe { &mut *STATE.get() }
}

fn emit<const N: usize>(text: &FmtBuf<N>) {
    if !text.as_bytes().is_empty() {
        let _ = sys::write_all(2, text.as_bytes());
    }
}

/// `--progress=STYLE`.
pub fn choose(style: Style) {
    let s = state();
    s.meter = Some(Meter::new(style, "restart"));
    s.json = style == Style::Json;
}

/// Reading `total` bytes of memory from the image begins.
pub fn start(total: u64) {
    let s = state();
    s.figures.total = total;
    s.start_ns = sys::monotonic_ns();
}

/// `n` more bytes are read.
pub fn advance(n: u64) {
    let s = state();
    let Some(meter) = s.meter.as_mut() else {
        return;
    };
    s.figures.done = s.figures.done.saturating_add(n).min(s.figures.total);
    s.unclocked += n;
    if s.unclocked < CLOCK_EVERY {
        return;
    }
    s.unclocked = 0;
    let now = sys::monotonic_ns();
    s.figures.elapsed_ns = now.saturating_sub(s.start_ns);
    let mut out = FmtBuf::<512>::new();
    meter.update(now, &s.figures, &mut out);
    emit(&out);
}

/// The memory is in place: the meter ends (a terminal's line is cleared before anything
/// else is written there).
pub fn finish() {
    let s = state();
    let Some(meter) = s.meter.as_mut() else {
        return;
    };
    s.figures.done = s.figures.total;
    s.figures.elapsed_ns = sys::monotonic_ns().saturating_sub(s.start_ns);
    let mut out = FmtBuf::<512>::new();
    meter.finish(&s.figures, &mut out);
    emit(&out);
}

/// For JSON: `{"type":"restart","ok":true,"image":...,"bytes":N,"seconds":S,"bytes_per_second":N}`,
/// the last word before the program runs again.
pub fn restored(image: &[u8]) {
    let s = state();
    if !s.json {
        return;
    }
    // Room for any path, escaped.
    let mut out = FmtBuf::<32768>::new();
    let _ = writeln!(
        out,
        "{{\"type\":\"restart\",\"ok\":true,\"image\":{},\"bytes\":{},\"seconds\":{},\"bytes_per_second\":{}}}",
        JsonStr(image),
        s.figures.total,
        Seconds(s.figures.elapsed_ns),
        s.figures.rate()
    );
    emit(&out);
}

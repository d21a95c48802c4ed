//! `mtcp inspect`: prints an image's header, process, threads, regions, files and timers (text or JSON) and verifies its checksums.

use std::fmt::Write as _;
use std::path::Path;

use mtcp_api::{Image, RegionCheck as Check};

use crate::args::{Args, Operands, Opt, Subcommand, Value};
use crate::image::{self, CpuClock, Header, Meta, ProcessRecord, RegionRecord, ThreadRecord, TimerRecord};
use crate::Result;

pub const COMMAND: Subcommand = Subcommand {
    name: "inspect",
    synopsis: "[--json] IMAGE",
    summary: "describe an image and verify its checksums",
    about: "\
Describes the checkpoint image IMAGE and verifies the checksums of its metadata and
of every region's saved data. Exits 1 if anything is corrupt.",
    options: &[Opt {
        name: "--json",
        value: Value::None,
        help: "print one JSON object instead of text",
    }],
    notes: "",
    operands: Operands::One("IMAGE"),
    run: main,
};

fn main(args: Args) -> Result<u8> {
    inspect(Path::new(&args.operands[0]), args.flag("--json"))
}

/// An error of the image reader as the tool's one-line failure.
pub fn failure(e: mtcp_api::Error) -> crate::Error {
    crate::Error::Fail(e.to_string())
}

fn inspect(path: &Path, json: bool) -> Result<u8> {
    let shown = path.display().to_string();
    let (file, header) = mtcp_api::read_header(path).map_err(failure)?;
    let image = match Image::with_header(path, file, header) {
        Ok(i) => i,
        Err(e) => {
            if !json {
                print!("{}", header_text(&shown, &header));
            }
            return Err(failure(e));
        }
    };
    let meta = image.meta();
    let checks = image.region_checks().map_err(failure)?;
    let out = if json {
        to_json(&shown, &header, &meta, &checks)
    } else {
        header_text(&shown, &header) + &body_text(&header, &meta, &checks)
    };
    print!("{}", out);
    image.verdict(&checks).map_err(failure)?;
    Ok(0)
}

/// Everything `inspect` checks (header, metadata, every region's data checksum), without
/// printing: the image's process record, or one line saying what is wrong.
pub fn check(path: &Path) -> Result<ProcessRecord> {
    let image = Image::open(path).map_err(failure)?;
    image.verify().map_err(failure)?;
    Ok(image.process())
}

/// Bytes up to the first NUL of a fixed-size name field, as text.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// UTC time as ISO 8601, from days-since-epoch arithmetic (Howard Hinnant's civil_from_days).
pub fn iso8601(sec: u64, nsec: u32) -> String {
    // Beyond year 9999 the format stops making sense; show the raw number.
    if sec >= 253_402_300_800 {
        return format!("@{}", sec);
    }
    let days = (sec / 86_400) as i64;
    let rem = sec % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    let ms = (nsec.min(999_999_999)) / 1_000_000;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms
    )
}

fn prot_text(prot: u32) -> String {
    let bit = |b: u32, c: char| if prot & b != 0 { c } else { '-' };
    [
        bit(image::PROT_READ, 'r'),
        bit(image::PROT_WRITE, 'w'),
        bit(image::PROT_EXEC, 'x'),
    ]
    .iter()
    .collect()
}

fn flag_names(flags: u32, table: &[(u32, &'static str)]) -> Vec<String> {
    let mut out: Vec<String> = table
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known = table.iter().fold(0, |acc, (b, _)| acc | b);
    if flags & !known != 0 {
        out.push(format!("0x{:x}", flags & !known));
    }
    out
}

const REGION_FLAGS: &[(u32, &str)] = &[
    (image::REGION_GROWSDOWN, "growsdown"),
    (image::REGION_NORESERVE, "noreserve"),
    (image::REGION_HEAP, "heap"),
    (image::REGION_STACK, "stack"),
    (image::REGION_DELETED, "deleted"),
    (image::REGION_DONTFORK, "dontfork"),
    (image::REGION_WIPEONFORK, "wipeonfork"),
    (image::REGION_DONTDUMP, "dontdump"),
    (image::REGION_HUGEPAGE, "hugepage"),
    (image::REGION_NOHUGEPAGE, "nohugepage"),
    (image::REGION_MERGEABLE, "mergeable"),
    (image::REGION_FILE_IDENTITY, "identity"),
];

const THREAD_FLAGS: &[(u32, &str)] = &[
    (image::THREAD_MAIN, "main"),
    (image::THREAD_RSEQ, "rseq"),
    (image::THREAD_COORDINATOR, "coordinator"),
];

fn joined(names: Vec<String>) -> String {
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

/// Sizes as ls -h would show them; regions are whole pages, so K is the smallest unit.
fn human(n: u64) -> String {
    const K: u64 = 1024;
    if n >= K * K * K {
        format!("{:.1}G", n as f64 / (K * K * K) as f64)
    } else if n >= K * K {
        format!("{:.1}M", n as f64 / (K * K) as f64)
    } else {
        format!("{}K", n / K)
    }
}

fn header_text(path: &str, h: &Header) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "image        {}", path);
    let _ = writeln!(s, "format       version {}, {} bytes", h.version, h.file_size);
    let _ = writeln!(s, "arch         {}", image::arch_name(h.arch));
    let _ = writeln!(s, "page size    {}", h.page_size);
    let _ = writeln!(s, "time         {}", iso8601(h.time_sec, h.time_nsec));
    let _ = writeln!(s, "xfeatures    0x{:x}, xsave size {}", h.xfeatures, h.xsave_size);
    s
}

/// The ids the image holds, as the program saw them, and what a restart does with them.
fn ids_text(p: &ProcessRecord) -> String {
    let seen = if p.flags & image::PROCESS_IN_NAMESPACE != 0 {
        "as the program saw them, in the pid namespace a restart made for it (its pid seen from outside was another)"
    } else {
        "as the program saw them"
    };
    format!(
        "pid {} and the thread ids below, {}; a restart gives them back (directly, or in a new pid namespace)",
        p.pid, seen
    )
}

fn body_text(h: &Header, meta: &Meta, checks: &[Check]) -> String {
    let w = if h.arch == image::ARCH_I386 { 8 } else { 12 };
    let mut s = String::new();
    let p: ProcessRecord = meta.process();
    let _ = writeln!(
        s,
        "process      pid {}, vpid {}, generation {}",
        p.pid, p.vpid, p.generation
    );
    let _ = writeln!(s, "  ids        {}", ids_text(&p));
    let _ = writeln!(s, "  comm       {}", cstr(&p.comm));
    let _ = writeln!(s, "  exe        {}", lossy(meta.string(p.exe)));
    let _ = writeln!(s, "  cwd        {}", lossy(meta.string(p.cwd)));
    let _ = writeln!(
        s,
        "  signal     {} ({})",
        p.checkpoint_signal,
        crate::signal::name(p.checkpoint_signal)
    );
    if p.interval_sec == 0 {
        let _ = writeln!(s, "  interval   off");
    } else {
        let _ = writeln!(s, "  interval   {} s", p.interval_sec);
    }
    let _ = writeln!(s, "  brk        0x{:0w$x}..0x{:0w$x}", p.mm.start_brk, p.mm.brk, w = w);
    let _ = writeln!(s, "  umask      {:04o}", p.umask);

    let _ = writeln!(s, "threads      {}", meta.thread_count);
    let _ = writeln!(
        s,
        "  {:>8}  {:<21}  {:<w2$}  {:<w2$}  {:<w2$}  NAME",
        "TID",
        "FLAGS",
        "TLS BASE",
        "SP",
        "IP",
        w2 = w + 2
    );
    for i in 0..meta.thread_count {
        let t: ThreadRecord = meta.thread(i);
        let _ = writeln!(
            s,
            "  {:>8}  {:<21}  0x{:0w$x}  0x{:0w$x}  0x{:0w$x}  {}",
            t.tid,
            joined(flag_names(t.flags, THREAD_FLAGS)),
            t.tls_base,
            t.sp,
            t.ip,
            cstr(&t.name),
            w = w
        );
    }

    let _ = writeln!(s, "regions      {}", meta.region_count);
    let _ = writeln!(
        s,
        "  {:<aw$}  {:>7}  PROT  {:<11}  {:<18}  {:>7}  PATH",
        "START-END",
        "SIZE",
        "KIND",
        "FLAGS",
        "PAGES",
        aw = 2 * w + 5
    );
    for (i, c) in checks.iter().enumerate() {
        let r: RegionRecord = meta.region(i);
        let _ = writeln!(
            s,
            "  0x{:0w$x}-0x{:0w$x}  {:>7}  {:<4}  {:<11}  {:<18}  {:>7}  {}{}",
            r.start,
            r.end,
            human(r.len()),
            prot_text(r.prot),
            image::kind_name(r.kind),
            joined(flag_names(r.flags, REGION_FLAGS)),
            c.saved_pages,
            lossy(meta.string(r.path)),
            if c.ok() { "" } else { "  [BAD CHECKSUM]" },
            w = w
        );
    }

    let _ = writeln!(s, "files        {}", meta.fd_count());
    for i in 0..meta.fd_count() {
        let f = meta.fd(i);
        let _ = writeln!(
            s,
            "  fd {:<4} {:<8} flags 0{:o}  offset {:<10} {}{}",
            f.fd,
            image::fd_kind_name(f.kind),
            f.flags,
            f.pos,
            lossy(meta.string(f.path)),
            fd_note(meta, &f)
        );
    }

    let _ = writeln!(s, "timers       {}", meta.timer_count());
    for i in 0..meta.timer_count() {
        let t = meta.timer(i);
        let _ = writeln!(
            s,
            "  id {:<4} {:<22} {}  value 0x{:x}  {}",
            t.id,
            clock_name(t.clock),
            notify_text(&t),
            t.value,
            timer_times(&t)
        );
    }

    let bad: Vec<usize> = (0..checks.len()).filter(|&i| !checks[i].ok()).collect();
    if bad.is_empty() {
        let _ = writeln!(s, "checksums: all {} regions ok", checks.len());
    } else {
        let _ = writeln!(s, "checksums: {} of {} regions BAD", bad.len(), checks.len());
        for i in bad {
            let r = meta.region(i);
            let _ = writeln!(
                s,
                "  0x{:0w$x}-0x{:0w$x} {}: stored 0x{:016x}, computed 0x{:016x}",
                r.start,
                r.end,
                lossy(meta.string(r.path)),
                checks[i].stored,
                checks[i].computed,
                w = w
            );
        }
    }
    s
}

/// A timer's clock: the CLOCK_* name, or whose CPU time it measures.
fn clock_name(clock: i32) -> String {
    if let Some(c) = CpuClock::decode(clock) {
        let which = ["prof", "virt", "sched", "?"][c.which as usize & 3];
        let whose = match (c.per_thread, c.pid) {
            (false, 0) => "process-cpu".to_string(),
            (false, pid) => format!("process-cpu({})", pid),
            (true, 0) => "thread-cpu".to_string(),
            (true, tid) => format!("thread-cpu({})", tid),
        };
        return format!("{}/{}", whose, which);
    }
    match clock {
        0 => "realtime",
        1 => "monotonic",
        7 => "boottime",
        8 => "realtime-alarm",
        9 => "boottime-alarm",
        11 => "tai",
        _ => return format!("clock {}", clock),
    }
    .to_string()
}

fn notify_text(t: &TimerRecord) -> String {
    match t.notify {
        image::TIMER_NOTIFY_NONE => "notify none".to_string(),
        image::TIMER_NOTIFY_THREAD_ID => format!("{} to thread {}", crate::signal::name(t.signo), t.target),
        n => format!("{} ({})", crate::signal::name(t.signo), image::timer_notify_name(n)),
    }
}

fn seconds(ns: u64) -> String {
    format!("{}.{:09} s", ns / 1_000_000_000, ns % 1_000_000_000)
}

fn timer_times(t: &TimerRecord) -> String {
    match (t.value_ns, t.interval_ns) {
        (0, _) => "disarmed".to_string(),
        (left, 0) => format!("in {}, once", seconds(left)),
        (left, every) => format!("in {}, every {}", seconds(left), seconds(every)),
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    mtcp_core::fmt::JsonStr(s.as_bytes()).to_string()
}

fn json_list(names: Vec<String>) -> String {
    let items: Vec<String> = names.iter().map(|n| json_str(n)).collect();
    format!("[{}]", items.join(","))
}

fn to_json(path: &str, h: &Header, meta: &Meta, checks: &[Check]) -> String {
    let p = meta.process();
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"path\":{},\"version\":{},\"arch\":{},\"page_size\":{},\"time_sec\":{},\"time_nsec\":{},\"time\":{},\"xfeatures\":{},\"xsave_size\":{},",
        json_str(path),
        h.version,
        json_str(image::arch_name(h.arch)),
        h.page_size,
        h.time_sec,
        h.time_nsec,
        json_str(&iso8601(h.time_sec, h.time_nsec)),
        h.xfeatures,
        h.xsave_size
    );
    let _ = write!(
        s,
        "\"process\":{{\"pid\":{},\"vpid\":{},\"generation\":{},\"in_namespace\":{},\"comm\":{},\"exe\":{},\"cwd\":{},\"signal\":{},\"interval\":{},\"start_brk\":{},\"brk\":{},\"umask\":{}}},",
        p.pid,
        p.vpid,
        p.generation,
        p.flags & image::PROCESS_IN_NAMESPACE != 0,
        json_str(&cstr(&p.comm)),
        json_str(&lossy(meta.string(p.exe))),
        json_str(&lossy(meta.string(p.cwd))),
        p.checkpoint_signal,
        p.interval_sec,
        p.mm.start_brk,
        p.mm.brk,
        p.umask
    );
    let threads: Vec<String> = (0..meta.thread_count)
        .map(|i| {
            let t = meta.thread(i);
            format!(
                "{{\"tid\":{},\"flags\":{},\"tls_base\":{},\"sp\":{},\"ip\":{},\"name\":{}}}",
                t.tid,
                json_list(flag_names(t.flags, THREAD_FLAGS)),
                t.tls_base,
                t.sp,
                t.ip,
                json_str(&cstr(&t.name))
            )
        })
        .collect();
    let _ = write!(s, "\"threads\":[{}],", threads.join(","));
    let regions: Vec<String> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let r = meta.region(i);
            format!(
                "{{\"start\":{},\"end\":{},\"prot\":{},\"kind\":{},\"flags\":{},\"saved_pages\":{},\"path\":{},\"checksum_ok\":{}}}",
                r.start,
                r.end,
                json_str(&prot_text(r.prot)),
                json_str(image::kind_name(r.kind)),
                json_list(flag_names(r.flags, REGION_FLAGS)),
                c.saved_pages,
                json_str(&lossy(meta.string(r.path))),
                c.ok()
            )
        })
        .collect();
    let _ = write!(s, "\"regions\":[{}],", regions.join(","));
    let fds: Vec<String> = (0..meta.fd_count())
        .map(|i| {
            let f = meta.fd(i);
            format!(
                "{{\"fd\":{},\"kind\":{},\"flags\":{},\"offset\":{},\"path\":{},\"buffered\":{},\"terminal\":{}{}}}",
                f.fd,
                json_str(image::fd_kind_name(f.kind)),
                f.flags,
                f.pos,
                json_str(&lossy(meta.string(f.path))),
                if f.kind == image::FD_PIPE || image::is_stdin_pipe(&f) {
                    f.data.len
                } else {
                    0
                },
                terminal_json(meta, &f),
                match event_state(&f, meta.string(f.data)) {
                    Some(state) => format!(",\"state\":{}", state.json),
                    None => String::new(),
                }
            )
        })
        .collect();
    let _ = write!(s, "\"fds\":[{}],", fds.join(","));
    let timers: Vec<String> = (0..meta.timer_count())
        .map(|i| {
            let t = meta.timer(i);
            format!(
                "{{\"id\":{},\"clock\":{},\"clock_name\":{},\"notify\":{},\"signal\":{},\"target\":{},\"value\":{},\"value_ns\":{},\"interval_ns\":{}}}",
                t.id,
                t.clock,
                json_str(&clock_name(t.clock)),
                json_str(image::timer_notify_name(t.notify)),
                t.signo,
                t.target,
                t.value,
                t.value_ns,
                t.interval_ns
            )
        })
        .collect();
    let _ = write!(s, "\"timers\":[{}],", timers.join(","));
    let _ = writeln!(s, "\"checksums_ok\":{}}}", checks.iter().all(|c| c.ok()));
    s
}

/// What the text view adds to a descriptor's line: the bytes buffered in a pipe, or a
/// terminal's state.
fn fd_note(meta: &image::Meta, f: &image::FdRecord) -> String {
    if (f.kind == image::FD_PIPE || image::is_stdin_pipe(f)) && f.data.len > 0 {
        return format!("  ({} bytes buffered)", f.data.len);
    }
    if let Some(state) = event_state(f, meta.string(f.data)) {
        return format!("  ({})", state.text);
    }
    match image::TtyState::of(f, meta.string(f.data)) {
        Some((t, _)) => format!(
            "  (terminal {}x{}: {}icanon {}echo{})",
            t.cols,
            t.rows,
            if t.lflag & 2 != 0 { "" } else { "-" },
            if t.lflag & 8 != 0 { "" } else { "-" },
            if t.pending > 0 {
                format!(", {} of {} typed bytes saved", t.saved, t.pending)
            } else {
                String::new()
            }
        ),
        None => String::new(),
    }
}

/// A terminal's state for `--json`, or null.
fn terminal_json(meta: &image::Meta, f: &image::FdRecord) -> String {
    match image::TtyState::of(f, meta.string(f.data)) {
        Some((t, _)) => format!(
            "{{\"icanon\":{},\"echo\":{},\"rows\":{},\"cols\":{},\"typed_pending\":{},\"typed_saved\":{}}}",
            t.lflag & 2 != 0,
            t.lflag & 8 != 0,
            t.rows,
            t.cols,
            t.pending,
            t.saved
        ),
        None => "null".to_string(),
    }
}

/// What a regular file's, a deleted file's, a FIFO's or an inotify record saved; None
/// for other kinds.
fn file_state(f: &image::FdRecord, data: &[u8]) -> Option<EventState> {
    if let Some(id) = image::FileIdentity::of(f, data) {
        let ctime = iso8601(id.ctime_sec.max(0) as u64, id.ctime_nsec);
        let born = id.flags & image::FILE_BTIME != 0;
        let btime = iso8601(id.btime_sec.max(0) as u64, id.btime_nsec);
        return Some(EventState {
            text: format!(
                "size {}, changed {ctime}{}",
                id.size,
                if born { format!(", born {btime}") } else { String::new() }
            ),
            json: format!(
                "{{\"size\":{},\"changed\":{},\"born\":{}}}",
                id.size,
                json_str(&ctime),
                if born { json_str(&btime) } else { "null".to_string() }
            ),
        });
    }
    if f.kind == image::FD_FIFO {
        return Some(EventState {
            text: format!("{} bytes buffered", data.len()),
            json: format!("{{\"buffered\":{}}}", data.len()),
        });
    }
    if let Some((state, watches)) = image::InotifyState::of(f, data) {
        if state.same_as != image::NOT_SHARED {
            return Some(EventState {
                text: format!("same file as fd {}", state.same_as),
                json: format!("{{\"same_as\":{}}}", state.same_as),
            });
        }
        let watches: Vec<(image::InotifyWatch, String)> = watches.map(|(w, p)| (w, lossy(p))).collect();
        let text: Vec<String> = watches
            .iter()
            .map(|(w, p)| {
                format!(
                    "wd {} mask {:#x} {}",
                    w.wd,
                    w.mask,
                    if p.is_empty() { "(path not found)" } else { p }
                )
            })
            .collect();
        let json: Vec<String> = watches
            .iter()
            .map(|(w, p)| {
                format!(
                    "{{\"wd\":{},\"mask\":{},\"inode\":{},\"path\":{}}}",
                    w.wd,
                    w.mask,
                    w.inode,
                    if p.is_empty() { "null".to_string() } else { json_str(p) }
                )
            })
            .collect();
        return Some(EventState {
            text: format!("watches {}: {}", watches.len(), text.join("; ")),
            json: format!("{{\"watches\":[{}]}}", json.join(",")),
        });
    }
    let (d, _) = image::DeletedFile::of(f, data)?;
    if d.same_as != image::NOT_SHARED {
        let dup = d.flags & image::DELETED_SAME_OPEN_FILE != 0;
        return Some(EventState {
            text: format!(
                "{} fd {}",
                if dup { "same open file as" } else { "same file as" },
                d.same_as
            ),
            json: format!("{{\"same_as\":{},\"same_open_file\":{dup}}}", d.same_as),
        });
    }
    Some(EventState {
        text: format!("{} bytes saved", d.size),
        json: format!("{{\"saved_bytes\":{}}}", d.size),
    })
}

/// An event descriptor's state, as text and as a JSON object.
struct EventState {
    text: String,
    json: String,
}

/// The state an eventfd, timerfd, signalfd or epoll record holds; None for other kinds.
fn event_state(f: &image::FdRecord, data: &[u8]) -> Option<EventState> {
    if let Some(state) = file_state(f, data) {
        return Some(state);
    }
    if let Some(state) = socket_state(f, data) {
        return Some(state);
    }
    if let Some(state) = mqueue_state(f, data) {
        return Some(state);
    }
    let same_as = image::event_fd_same_as(f, data)?;
    if same_as != image::NOT_SHARED {
        return Some(EventState {
            text: format!("same file as fd {same_as}"),
            json: format!("{{\"same_as\":{same_as}}}"),
        });
    }
    let secs = |s: i64, ns: u32| format!("{s}.{ns:09}");
    if let Some(e) = image::EventFdState::of(f, data) {
        let semaphore = e.flags & image::EVENTFD_SEMAPHORE != 0;
        return Some(EventState {
            text: format!("count {}{}", e.count, if semaphore { ", semaphore" } else { "" }),
            json: format!("{{\"count\":{},\"semaphore\":{semaphore}}}", e.count),
        });
    }
    if let Some(t) = image::TimerFdState::of(f, data) {
        let abs = t.settime_flags & 1 != 0;
        let value = secs(t.value_sec, t.value_nsec);
        let interval = secs(t.interval_sec, t.interval_nsec);
        return Some(EventState {
            text: format!(
                "clock {}, {} {value} s, every {interval} s, {} unread",
                t.clock,
                if abs { "fires at" } else { "fires in" },
                t.ticks
            ),
            json: format!(
                "{{\"clock\":{},\"abstime\":{abs},\"value\":{value},\"interval\":{interval},\"ticks\":{}}}",
                t.clock, t.ticks
            ),
        });
    }
    if let Some(sg) = image::SignalFdState::of(f, data) {
        return Some(EventState {
            text: format!("signals {:#x}", sg.mask),
            json: format!("{{\"mask\":{}}}", sg.mask),
        });
    }
    let (_, entries) = image::EpollState::of(f, data)?;
    let entries: Vec<image::EpollEntry> = entries.collect();
    let watched: Vec<String> = entries
        .iter()
        .map(|e| format!("fd {} events {:#x} data {:#x}", e.fd, e.events, e.data))
        .collect();
    let json: Vec<String> = entries
        .iter()
        .map(|e| format!("{{\"fd\":{},\"events\":{},\"data\":{}}}", e.fd, e.events, e.data))
        .collect();
    Some(EventState {
        text: format!("watches {}: {}", entries.len(), watched.join("; ")),
        json: format!("{{\"watches\":[{}]}}", json.join(",")),
    })
}

/// A socket's family, type, address and state, for both views.
fn socket_state(f: &image::FdRecord, data: &[u8]) -> Option<EventState> {
    let info = image::SocketInfo::of(f, data)?;
    let family = match info.domain {
        1 => "unix".to_string(),
        2 => "inet".to_string(),
        10 => "inet6".to_string(),
        image::AF_NETLINK => "netlink".to_string(),
        n => format!("family {n}"),
    };
    let kind = match info.kind & 0xf {
        1 => "stream".to_string(),
        2 => "dgram".to_string(),
        3 => "raw".to_string(),
        5 => "seqpacket".to_string(),
        n => format!("type {n}"),
    };
    if let Some((nl, _)) = image::NetlinkState::of(f, data) {
        return Some(EventState {
            text: format!(
                "{family} {kind}, protocol {}, port {}, groups {:#x}, {} queue notification(s) waiting",
                info.protocol, nl.portid, nl.groups, nl.cookies
            ),
            json: format!(
                "{{\"family\":{},\"type\":{},\"protocol\":{},\"port\":{},\"groups\":{},\"waiting_notifications\":{}}}",
                json_str(&family),
                json_str(&kind),
                info.protocol,
                nl.portid,
                nl.groups,
                nl.cookies
            ),
        });
    }
    let Some((st, messages)) = image::SocketState::of(f, data) else {
        return Some(EventState {
            text: format!("{family} {kind}, protocol {}", info.protocol),
            json: format!(
                "{{\"family\":{},\"type\":{},\"protocol\":{}}}",
                json_str(&family),
                json_str(&kind),
                info.protocol
            ),
        });
    };
    let addr = image::SocketAddr(st.addr()).to_string();
    let peer = image::SocketAddr(st.peer()).to_string();
    let state = image::socket_state_name(st.state);
    let queued = messages.total();
    let mut text = format!("{family} {kind} {state}");
    if st.same_as != image::NOT_SHARED {
        text = format!("same socket as fd {}", st.same_as);
    } else {
        if st.addr_len > 2 {
            text += &format!(" on {addr}");
        }
        if st.state == image::SOCKET_LISTENING {
            text += &format!(", backlog {}", st.backlog);
        }
        if st.state == image::SOCKET_CONNECTED {
            text += &format!(" to {peer}");
        }
        if st.state == image::SOCKET_PAIR {
            text += &format!(", {queued} bytes queued");
        }
    }
    Some(EventState {
        text,
        json: format!(
            "{{\"family\":{},\"type\":{},\"protocol\":{},\"state\":{},\"address\":{},\"peer\":{},\"backlog\":{},\"options\":{},\"queued\":{},\"same_as\":{}}}",
            json_str(&family),
            json_str(&kind),
            info.protocol,
            json_str(state),
            json_str(&addr),
            json_str(&peer),
            st.backlog,
            st.options,
            queued,
            if st.same_as == image::NOT_SHARED { "null".to_string() } else { st.same_as.to_string() }
        ),
    })
}

/// A message queue's attributes, registration and saved messages, for both views.
fn mqueue_state(f: &image::FdRecord, data: &[u8]) -> Option<EventState> {
    let (q, messages) = image::MqueueState::of(f, data)?;
    if q.same_as != image::NOT_SHARED {
        let dup = q.flags & image::MQ_SAME_OPEN_FILE != 0;
        return Some(EventState {
            text: format!(
                "{} fd {}",
                if dup { "same open file as" } else { "same queue as" },
                q.same_as
            ),
            json: format!("{{\"same_as\":{},\"same_open_file\":{dup}}}", q.same_as),
        });
    }
    let unlinked = q.flags & image::MQ_UNLINKED != 0;
    let saved = q.flags & image::MQ_MESSAGES_SAVED != 0;
    let known = q.flags & image::MQ_VALUE_KNOWN != 0;
    let notify = image::mq_notify_name(q.notify);
    let registration = match q.notify {
        image::MQ_NOTIFY_NONE => "no notification".to_string(),
        image::MQ_NOTIFY_SIGNAL if known => format!("notify signal {} value {:#x}", q.signo, q.value),
        image::MQ_NOTIFY_SIGNAL => format!("notify signal {} (value unknown)", q.signo),
        image::MQ_NOTIFY_THREAD if known => format!("notify thread through fd {}", q.signo),
        image::MQ_NOTIFY_THREAD => "notify thread (cookie unknown)".to_string(),
        image::MQ_NOTIFY_ELSEWHERE => format!("notification for pid {}", q.notify_pid),
        _ => format!("notify {notify}"),
    };
    let list: Vec<(u32, &[u8])> = messages.collect();
    let mut text = format!(
        "{}max {} x {} bytes, {} queued ({} bytes), {registration}",
        if unlinked { "unlinked, " } else { "" },
        q.maxmsg,
        q.msgsize,
        q.curmsgs,
        q.qsize
    );
    if unlinked {
        let prios: Vec<String> = list.iter().map(|(p, b)| format!("{}:{}", p, b.len())).collect();
        text += &if saved {
            format!(", {} saved [prio:bytes {}]", list.len(), prios.join(" "))
        } else {
            ", messages NOT saved".to_string()
        };
    }
    let json_messages: Vec<String> = list
        .iter()
        .map(|(p, b)| format!("{{\"prio\":{},\"bytes\":{}}}", p, b.len()))
        .collect();
    let cookie: Vec<String> = q.cookie.iter().map(|b| format!("{b:02x}")).collect();
    Some(EventState {
        text,
        json: format!(
            "{{\"unlinked\":{unlinked},\"maxmsg\":{},\"msgsize\":{},\"curmsgs\":{},\"qsize\":{},\"notify\":{},\"signal\":{},\"value\":{},\"socket\":{},\"cookie\":{},\"notify_pid\":{},\"messages_saved\":{saved},\"messages\":[{}]}}",
            q.maxmsg,
            q.msgsize,
            q.curmsgs,
            q.qsize,
            json_str(notify),
            if q.notify == image::MQ_NOTIFY_SIGNAL { q.signo.to_string() } else { "null".to_string() },
            if q.notify == image::MQ_NOTIFY_SIGNAL && known { q.value.to_string() } else { "null".to_string() },
            if q.notify == image::MQ_NOTIFY_THREAD && known { q.signo.to_string() } else { "null".to_string() },
            if q.notify == image::MQ_NOTIFY_THREAD && known { json_str(&cookie.concat()) } else { "null".to_string() },
            q.notify_pid,
            json_messages.join(",")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000, 123_456_789), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(4_102_444_799, 999_999_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(iso8601(253_402_300_799, 0), "9999-12-31T23:59:59.000Z");
        assert_eq!(iso8601(u64::MAX, 0), format!("@{}", u64::MAX));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        assert_eq!(json_list(vec!["main".into(), "rseq".into()]), "[\"main\",\"rseq\"]");
    }

    #[test]
    fn names() {
        assert_eq!(prot_text(5), "r-x");
        assert_eq!(prot_text(0), "---");
        assert_eq!(
            joined(flag_names(image::REGION_HEAP | 1 << 30, REGION_FLAGS)),
            "heap,0x40000000"
        );
        assert_eq!(joined(flag_names(0, THREAD_FLAGS)), "-");
        assert_eq!(human(4096), "4K");
        assert_eq!(human(3 << 20), "3.0M");
        assert_eq!(clock_name(1), "monotonic");
        assert_eq!(clock_name(-6), "process-cpu/sched");
        assert_eq!(
            clock_name(
                CpuClock {
                    pid: 77,
                    per_thread: true,
                    which: 0
                }
                .encode()
            ),
            "thread-cpu(77)/prof"
        );
        let t = TimerRecord {
            value_ns: 1_500_000_000,
            interval_ns: 2_000_000_000,
            ..TimerRecord::zeroed()
        };
        assert_eq!(timer_times(&t), "in 1.500000000 s, every 2.000000000 s");
        assert_eq!(timer_times(&TimerRecord { value_ns: 0, ..t }), "disarmed");
    }
}

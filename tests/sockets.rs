//! Sockets across a restart: listeners keep answering on their port or path, a bound UDP
//! socket stays bound, Unix socket pairs keep their queued bytes, and a connection to a
//! peer outside the process comes back reset and is named.

pub mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A port no one listens on now, picked by the kernel at random.
fn free_port(v6: bool) -> u16 {
    let l = TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).expect("bind a free port");
    let port = l.local_addr().unwrap().port();
    // The program binds it UDP too; make sure that is free as well.
    if !v6 && UdpSocket::bind(("127.0.0.1", port)).is_err() {
        return free_port(v6);
    }
    port
}

/// Sends a line over a new connection and returns the program's answer.
fn ask(mut s: impl Read + Write) -> String {
    s.write_all(b"ping\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the answer");
    reply.trim().to_string()
}

fn ask_tcp(addr: &str) -> String {
    let a = addr.parse().unwrap();
    let s = TcpStream::connect_timeout(&a, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    ask(s)
}

fn ask_unix(path: &Path) -> String {
    let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    ask(s)
}

fn ask_udp(port: u16) -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).expect("a UDP answer");
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

/// Checkpoints `p`, kills it and restarts its image; the restarted process has counted
/// on by a few lines.
fn checkpoint_kill_restart(t: &Test, mut p: Proc) -> (PathBuf, Proc) {
    let image = checkpoint(p.pid());
    p.kill9();
    p.assert_no_bad();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    r.wait_for_count(first + 3, LINE_TIMEOUT);
    (image, r)
}

fn socket_json(image: &Path, fd: u64) -> serde_json::Value {
    let json = inspect_json(image);
    json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fd"].as_u64() == Some(fd))
        .unwrap_or_else(|| panic!("no fd {fd} in the image: {json}"))["state"]
        .clone()
}

/// The count in an answer (`pong N`): a restarted server answers from where it was.
fn pong(reply: &str) -> u64 {
    reply
        .strip_prefix("pong ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an answer: {reply:?}"))
}

fn listener(bits: Bits, mode: &str) {
    let t = Test::new(&bits.name(&format!("sockets_{mode}")));
    let prog = t.compile("sockets", Variant::Dynamic, bits, &[]);
    let (arg, family, address) = match mode {
        "tcp4" | "udp" => {
            let port = free_port(false);
            (port.to_string(), "inet", format!("127.0.0.1:{port}"))
        }
        "tcp6" => {
            let port = free_port(true);
            (port.to_string(), "inet6", format!("[::1]:{port}"))
        }
        _ => {
            let path = t.path("server.sock");
            (path.display().to_string(), "unix", path.display().to_string())
        }
    };
    let ask_now = || match mode {
        "udp" => ask_udp(arg.parse().unwrap()),
        "unix" => ask_unix(Path::new(&arg)),
        _ => ask_tcp(&address),
    };
    let mut p = t.launch(&prog, &[mode, &arg]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let before = pong(&ask_now());
    let (image, mut r) = checkpoint_kill_restart(&t, p);
    let state = socket_json(&image, 3);
    let want_state = if mode == "udp" { "bound" } else { "listening" };
    assert_eq!(state["family"], family, "{state}");
    assert_eq!(state["state"], want_state, "{state}");
    let shown_addr = if mode == "tcp6" {
        format!("[0:0:0:0:0:0:0:1]:{arg}")
    } else {
        address.clone()
    };
    assert_eq!(state["address"], shown_addr.as_str(), "{state}");
    let after = pong(&ask_now());
    assert!(
        after > before,
        "answer {after} after the restart, {before} before\n{}",
        r.describe()
    );
    if mode != "udp" {
        let opts = r.wait_for_line("`opts` after serving", LINE_TIMEOUT, |l| l.starts_with("opts"));
        let want = if mode == "unix" {
            "opts fd=3 reuseaddr=1 nodelay=0 listening=1 nonblock=1 cloexec=1"
        } else {
            "opts fd=3 reuseaddr=1 nodelay=1 listening=1 nonblock=1 cloexec=1"
        };
        assert_eq!(opts, want, "the listener's options changed\n{}", r.describe());
    }
    r.wait_for_count(after + 5, LINE_TIMEOUT);
    r.assert_no_bad();
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(noise.is_empty(), "the restart complained: {noise:?}");
}

per_width!(tcp4_listener_answers_on_its_port_after_restart, tcp4_listener_answers_on_its_port_after_restart_32 => listener("tcp4"));
per_width!(tcp6_listener_answers_on_its_port_after_restart, tcp6_listener_answers_on_its_port_after_restart_32 => listener("tcp6"));
per_width!(udp_socket_stays_bound_after_restart, udp_socket_stays_bound_after_restart_32 => listener("udp"));
per_width!(unix_listener_answers_on_its_path_after_restart, unix_listener_answers_on_its_path_after_restart_32 => listener("unix"));

/// Unix stream, datagram and seqpacket pairs with bytes queued both ways: all of them
/// arrive after the restart, datagrams as the messages they were, and the process that
/// was checkpointed reads them all too.
fn socket_pairs(bits: Bits) {
    const HELD: &str = "held s0=to-zero s1=to-one,more d0=d333 d1=d1|d22 q0=q22 q1=q1|";
    let t = Test::new(&bits.name("socket_pairs"));
    let prog = t.compile("sockets", Variant::Dynamic, bits, &[]);
    let mut p = t.launch(&prog, &["pair", "40"]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    let held = p.wait_for_line("`held ...`", LINE_TIMEOUT, |l| l.starts_with("held "));
    assert_eq!(
        held,
        HELD,
        "the checkpointed process lost queued bytes\n{}",
        p.describe()
    );
    p.kill9();
    p.assert_no_bad();
    let mut r = t.restart(&image);
    let first = r.wait_first_count(LINE_TIMEOUT);
    assert!(first < 40, "restarted at count {first}, after the bytes were read");
    let held = r.wait_for_line("`held ...`", LINE_TIMEOUT, |l| l.starts_with("held "));
    assert_eq!(held, HELD, "the queued bytes changed\n{}", r.describe());
    let json = inspect_json(&image);
    let pairs: Vec<&serde_json::Value> = json["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"]["state"] == "pair")
        .collect();
    assert_eq!(pairs.len(), 6, "six ends of socket pairs: {json}");
    let queued: u64 = pairs.iter().map(|f| f["state"]["queued"].as_u64().unwrap()).sum();
    assert_eq!(queued, 11 + 7 + 5 + 4 + 2 + 3, "{json}");
    r.wait_for_count(50, LINE_TIMEOUT);
    r.assert_no_bad();
    let noise: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert!(noise.is_empty(), "the restart complained: {noise:?}");
}

per_width!(socket_pairs_keep_their_queued_bytes, socket_pairs_keep_their_queued_bytes_32 => socket_pairs());

/// A TCP connection to the test's own listener cannot come back: after the restart the
/// program reads a reset on it, and the restart names it in one line.
fn outside_connection(bits: Bits) {
    let t = Test::new(&bits.name("socket_outside"));
    let prog = t.compile("sockets", Variant::Dynamic, bits, &[]);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let mut p = t.launch(&prog, &["conn", &port.to_string(), "60"]);
    let (_conn, _) = server.accept().expect("the program connects");
    p.wait_for_count(3, LINE_TIMEOUT);
    let (image, mut r) = checkpoint_kill_restart(&t, p);
    let state = socket_json(&image, 3);
    assert_eq!(state["state"], "connected", "{state}");
    assert_eq!(state["peer"], format!("127.0.0.1:{port}").as_str(), "{state}");
    let seen = r.wait_for_line("`conn ...`", Duration::from_secs(20), |l| l.starts_with("conn "));
    assert_eq!(seen, "conn reset", "{}", r.describe());
    let named: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert_eq!(named.len(), 1, "one line about the connection: {named:?}");
    assert!(
        named[0].contains("fd 3")
            && named[0].contains(&format!("TCP connection to 127.0.0.1:{port}"))
            && named[0].contains("reset"),
        "unclear: {named:?}"
    );
    r.wait_for_count(65, LINE_TIMEOUT);
    r.assert_no_bad();
}

per_width!(outside_connection_reads_as_reset_after_restart, outside_connection_reads_as_reset_after_restart_32 => outside_connection());

/// The listener's port is taken when the restart comes: the restart fails with one line
/// that names the socket and the error, rather than go on without its port.
fn port_taken(bits: Bits) {
    let t = Test::new(&bits.name("socket_port_taken"));
    let prog = t.compile("sockets", Variant::Dynamic, bits, &[]);
    let port = free_port(false);
    let mut p = t.launch(&prog, &["tcp4", &port.to_string()]);
    p.wait_for_count(3, LINE_TIMEOUT);
    let image = checkpoint(p.pid());
    p.kill9();
    let _squatter = TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let out = run_restart_program(bits.mtcp_restart(), &image, &t.dir);
    if let Some(problem) = one_line_failure("restart with the port taken", &out, true, &["eaddrinuse"]) {
        panic!("{problem}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("fd 3 (TCP listener on 127.0.0.1:{port})")),
        "the socket is not named: {err}"
    );
}

per_width!(listener_whose_port_is_taken_fails_the_restart, listener_whose_port_is_taken_fails_the_restart_32 => port_taken());

/// A Unix stream connection to the test's own listener comes back closed by its peer:
/// the program reads end-of-file, and the restart names it in one line.
fn outside_unix_connection(bits: Bits) {
    let t = Test::new(&bits.name("socket_outside_unix"));
    let prog = t.compile("sockets", Variant::Dynamic, bits, &[]);
    let path = t.path("peer.sock");
    let server = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut p = t.launch(&prog, &["uconn", path.to_str().unwrap(), "60"]);
    let (_conn, _) = server.accept().expect("the program connects");
    p.wait_for_count(3, LINE_TIMEOUT);
    let (_image, mut r) = checkpoint_kill_restart(&t, p);
    let seen = r.wait_for_line("`conn ...`", Duration::from_secs(20), |l| l.starts_with("conn "));
    assert_eq!(seen, "conn eof", "{}", r.describe());
    let named: Vec<String> = r.stderr_lines().into_iter().filter(|l| l.contains("mtcp")).collect();
    assert_eq!(named.len(), 1, "one line about the connection: {named:?}");
    let want = format!("fd 3 (Unix stream connection to {}) cannot come back", path.display());
    assert!(named[0].contains(&want), "unclear: {named:?}");
    r.wait_for_count(65, LINE_TIMEOUT);
    r.assert_no_bad();
}

per_width!(outside_unix_connection_reads_as_closed_after_restart, outside_unix_connection_reads_as_closed_after_restart_32 => outside_unix_connection());

//! Step 4, sockets: listeners bound and listening again at their numbers, bound sockets
//! bound, Unix socket pairs inside the process made again with their queued bytes; a
//! connection to something outside comes back as one that reads as closed or reset.
#![deny(unsafe_code)]

use mtcp_core::eprint_line;
use mtcp_core::fmt::ErrnoName;
use mtcp_core::image::*;
use mtcp_core::sys::{self, Fd};
use mtcp_core::Errno;

/// Makes the socket of record `rec` again at its number, if its record has a
/// SocketState (false otherwise: the caller decides). A listener or bound socket whose
/// address cannot be bound again ends the restart with one line: a server that lost
/// its port without saying so is worse than one that does not start.
pub fn restore(meta: &Meta, rec: &FdRecord, verbose: bool) -> bool {
    let data = meta.string(rec.data);
    let (Some(info), Some((s, _))) = (SocketInfo::of(rec, data), SocketState::of(rec, data)) else {
        return false;
    };
    let what = Name(info, s);
    if s.same_as != NOT_SHARED {
        if let Err(e) = sys::dup3(s.same_as as i32, rec.fd as i32, cloexec(rec)) {
            warn_closed(rec, &what, "cannot be duplicated", e);
        }
        return true;
    }
    let made = match s.state {
        SOCKET_PAIR => return restore_pair(meta, rec, info, &s, verbose),
        SOCKET_CONNECTED => return restore_connection(rec, info, &s, verbose),
        SOCKET_LISTENING | SOCKET_BOUND => new_socket(info, &s).and_then(|sock| {
            bind_again(sock.raw(), info, &s, meta)?;
            if s.state == SOCKET_LISTENING {
                sys::listen(sock.raw(), s.backlog).map_err(|e| ("cannot listen", e))?;
            }
            Ok(sock)
        }),
        _ => new_socket(info, &s),
    };
    match made.and_then(|sock| place(sock, rec).map_err(|e| ("cannot be put at its number", e))) {
        Ok(()) => {
            if verbose {
                eprint_line!("mtcp_restart: fd {} {} made again", rec.fd, what);
            }
        }
        Err((why, e)) if matches!(s.state, SOCKET_LISTENING | SOCKET_BOUND) => {
            die!("fd {} ({}): {}: {}", rec.fd, what, why, ErrnoName(e))
        }
        Err((why, e)) => warn_closed(rec, &what, why, e),
    }
    true
}

/// How a socket is named in messages: `TCP listener on 127.0.0.1:8080`.
struct Name(SocketInfo, SocketState);

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Name(info, s) = self;
        let proto = match (info.domain, info.kind & 0xf) {
            (sys::AF_UNIX, sys::SOCK_STREAM) => "Unix stream",
            (sys::AF_UNIX, sys::SOCK_DGRAM) => "Unix datagram",
            (sys::AF_UNIX, sys::SOCK_SEQPACKET) => "Unix seqpacket",
            (_, sys::SOCK_STREAM) => "TCP",
            (_, sys::SOCK_DGRAM) => "UDP",
            _ => "socket",
        };
        match s.state {
            SOCKET_LISTENING => write!(f, "{} listener on {}", proto, SocketAddr(s.addr())),
            SOCKET_BOUND => write!(f, "{} socket bound to {}", proto, SocketAddr(s.addr())),
            SOCKET_CONNECTED => write!(f, "{} connection to {}", proto, SocketAddr(s.peer())),
            SOCKET_PAIR => write!(f, "{} socket pair", proto),
            _ => write!(f, "{} socket", proto),
        }
    }
}

type Failure = (&'static str, Errno);

fn warn_closed(rec: &FdRecord, what: &Name, why: &str, e: Errno) {
    eprint_line!(
        "mtcp_restart: warning: fd {} ({}) {}: {}; it stays closed",
        rec.fd,
        what,
        why,
        ErrnoName(e)
    );
}

fn cloexec(rec: &FdRecord) -> usize {
    if rec.flags & sys::O_CLOEXEC as u32 != 0 {
        sys::O_CLOEXEC
    } else {
        0
    }
}

/// A new socket of the record's family, type and protocol, with its options.
fn new_socket(info: SocketInfo, s: &SocketState) -> Result<Fd, Failure> {
    let sock = sys::socket(info.domain, info.kind, info.protocol).map_err(|e| ("cannot be made", e))?;
    set_options(sock.raw(), info, s);
    Ok(sock)
}

/// The options the program set. A buffer size is set only where it differs from a new
/// socket's, so that the kernel's automatic sizing stays on where it was.
fn set_options(fd: i32, info: SocketInfo, s: &SocketState) {
    let on = |bit| i32::from(s.options & bit != 0);
    let _ = sys::setsockopt(fd, sys::SOL_SOCKET, sys::SO_REUSEADDR, &on(SOCKOPT_REUSEADDR));
    if s.options & SOCKOPT_REUSEPORT != 0 {
        let _ = sys::setsockopt(fd, sys::SOL_SOCKET, sys::SO_REUSEPORT, &1i32);
    }
    if s.options & SOCKOPT_KEEPALIVE != 0 {
        let _ = sys::setsockopt(fd, sys::SOL_SOCKET, sys::SO_KEEPALIVE, &1i32);
    }
    if s.options & SOCKOPT_NODELAY != 0 {
        let _ = sys::setsockopt(fd, sys::IPPROTO_TCP, sys::TCP_NODELAY, &1i32);
    }
    if info.domain == sys::AF_INET6 {
        let _ = sys::setsockopt(fd, sys::IPPROTO_IPV6, sys::IPV6_V6ONLY, &on(SOCKOPT_V6ONLY));
    }
    for (opt, want) in [(sys::SO_RCVBUF, s.rcvbuf), (sys::SO_SNDBUF, s.sndbuf)] {
        let now = sys::getsockopt_int(fd, sys::SOL_SOCKET, opt).unwrap_or(0) as u32;
        if want != 0 && want != now {
            let _ = sys::setsockopt(fd, sys::SOL_SOCKET, opt, &((want / 2) as i32));
        }
    }
}

/// Binds `fd` to the record's address. A Unix path still there from the dead process
/// is removed first, but only if it is a socket nobody listens on. A relative path is
/// taken from the program's working directory (not yet restored at this step).
fn bind_again(fd: i32, info: SocketInfo, s: &SocketState, meta: &Meta) -> Result<(), Failure> {
    let addr = s.addr();
    let is_path = info.domain == sys::AF_UNIX && addr.len() > 2 && addr[2] != 0;
    if !is_path {
        return sys::bind(fd, addr).map_err(|e| ("cannot bind", e));
    }
    let path = addr[2..].split(|&c| c == 0).next().unwrap_or(&[]);
    let mut full = [0u8; 110];
    let mut len = 2;
    full[0] = sys::AF_UNIX as u8;
    if path.first() != Some(&b'/') {
        for &c in meta.string(meta.process().cwd).iter().chain(b"/") {
            if len < full.len() {
                full[len] = c;
            }
            len += 1;
        }
    }
    if len + path.len() >= full.len() {
        return Err((
            "cannot bind: its path with the working directory is too long",
            Errno::ENAMETOOLONG,
        ));
    }
    full[len..len + path.len()].copy_from_slice(path);
    let addr = &full[..len + path.len() + 1];
    match sys::bind(fd, addr) {
        Err(Errno::EADDRINUSE) => {}
        r => return r.map_err(|e| ("cannot bind", e)),
    }
    let probe = sys::socket(sys::AF_UNIX, info.kind & 0xf, 0).map_err(|e| ("cannot probe its path", e))?;
    match sys::connect(probe.raw(), addr) {
        Err(Errno::ECONNREFUSED) => {}
        Ok(()) => return Err(("cannot bind: another socket listens on its path", Errno::EADDRINUSE)),
        Err(e) => return Err(("cannot bind", e)),
    }
    let p = sys::CPathBuf::<110>::new(&addr[2..addr.len() - 1]).map_err(|e| ("cannot bind", e))?;
    sys::unlinkat(sys::AT_FDCWD, &p).map_err(|e| ("cannot remove the old socket file", e))?;
    sys::bind(fd, addr).map_err(|e| ("cannot bind", e))
}

/// Puts `sock` at the record's number with its O_NONBLOCK and O_CLOEXEC.
fn place(sock: Fd, rec: &FdRecord) -> Result<(), Errno> {
    if sock.raw() == rec.fd as i32 {
        let _ = sock.into_raw();
        if cloexec(rec) != 0 {
            let _ = sys::fcntl(rec.fd as i32, F_SETFD, 1);
        }
    } else {
        sys::dup3(sock.raw(), rec.fd as i32, cloexec(rec))?;
    }
    let _ = sys::fcntl(rec.fd as i32, sys::F_SETFL, rec.flags as usize & sys::O_NONBLOCK);
    Ok(())
}

const F_SETFD: usize = 2;

/// The record of the other end of a pair.
fn peer_of(meta: &Meta, s: &SocketState) -> Option<FdRecord> {
    (0..meta.fd_count()).map(|j| meta.fd(j)).find(|p| {
        p.kind == FD_SOCKET
            && p.inode == s.peer_inode
            && SocketState::of(p, meta.string(p.data)).is_some_and(|(ps, _)| ps.same_as == NOT_SHARED)
    })
}

/// A Unix socket pair inside the process: made when its lower-numbered end comes, both
/// ends put in place, each with the bytes that waited on it (sent from the other end).
fn restore_pair(meta: &Meta, rec: &FdRecord, info: SocketInfo, s: &SocketState, verbose: bool) -> bool {
    let what = Name(info, *s);
    let Some(peer) = peer_of(meta, s) else {
        warn_closed(rec, &what, "lost its other end", Errno::ENOENT);
        return true;
    };
    if peer.fd < rec.fd {
        return true; // made with its peer
    }
    let Some((ps, peer_msgs)) = SocketState::of(&peer, meta.string(peer.data)) else {
        return true;
    };
    let (_, msgs) = SocketState::of(rec, meta.string(rec.data)).unwrap_or((*s, SocketMessages::new(&[])));
    let above = (0..meta.fd_count()).map(|i| meta.fd(i).fd).max().unwrap_or(0) as usize + 1;
    // Both ends start above every number the process uses, so moving one into place
    // never closes the other.
    let made = sys::socketpair(info.domain, info.kind)
        .and_then(|(a, b)| Ok((sys::dup_at_least(a.raw(), above)?, sys::dup_at_least(b.raw(), above)?)));
    let (a, b) = match made {
        Ok(p) => p,
        Err(e) => {
            warn_closed(rec, &what, "cannot be made again", e);
            return true;
        }
    };
    set_options(a.raw(), info, s);
    set_options(b.raw(), info, &ps);
    for (to, from, queued) in [(rec, &b, msgs), (&peer, &a, peer_msgs)] {
        let total = queued.total();
        for m in queued.flatten() {
            if let Err(e) = sys::send_all(from.raw(), m, sys::MSG_DONTWAIT | sys::MSG_NOSIGNAL) {
                eprint_line!(
                    "mtcp_restart: warning: fd {} ({}) lost bytes that waited on it: {}",
                    to.fd,
                    what,
                    ErrnoName(e)
                );
                break;
            }
        }
        if verbose {
            eprint_line!(
                "mtcp_restart: fd {} {} made again with {} byte(s) waiting",
                to.fd,
                what,
                total
            );
        }
    }
    for (end, sock) in [(rec, a), (&peer, b)] {
        if let Err(e) = place(sock, end) {
            warn_closed(end, &what, "cannot be put at its number", e);
        }
    }
    true
}

/// A connection to something outside the process cannot come back. A connected UDP
/// socket is connected again (nothing was lost but datagrams in flight); a TCP
/// connection comes back reset (reads fail with ECONNRESET, writes with EPIPE or
/// SIGPIPE as for a real reset); a Unix one closed by its peer (reads return 0).
fn restore_connection(rec: &FdRecord, info: SocketInfo, s: &SocketState, verbose: bool) -> bool {
    let what = Name(info, *s);
    let kind = info.kind & 0xf;
    if info.domain != sys::AF_UNIX && kind == sys::SOCK_DGRAM {
        let made = new_socket(info, s).and_then(|sock| {
            sys::connect(sock.raw(), s.peer()).map_err(|e| ("cannot connect", e))?;
            Ok(sock)
        });
        match made.and_then(|sock| place(sock, rec).map_err(|e| ("cannot be put at its number", e))) {
            Ok(()) if verbose => eprint_line!("mtcp_restart: fd {} {} connected again", rec.fd, what),
            Ok(()) => {}
            Err((why, e)) => warn_closed(rec, &what, why, e),
        }
        return true;
    }
    let (made, reads_as) = if info.domain == sys::AF_UNIX {
        let pair = sys::socketpair(sys::AF_UNIX, kind).map(|(a, _closed)| a);
        (pair, "closed by its peer")
    } else {
        (reset_tcp(info), "reset")
    };
    match made.and_then(|sock| place(sock, rec)) {
        Ok(()) => eprint_line!(
            "mtcp_restart: warning: fd {} ({}) cannot come back; it reads as {}",
            rec.fd,
            what,
            reads_as
        ),
        Err(e) => warn_closed(rec, &what, "cannot be replaced", e),
    }
    true
}

/// A TCP socket whose connection was reset: connected to a listener of our own on the
/// loopback address, whose end is closed with SO_LINGER 0 (which sends a reset).
fn reset_tcp(info: SocketInfo) -> Result<Fd, Errno> {
    let mut addr = [0u8; 28];
    let len = if info.domain == sys::AF_INET6 {
        addr[0] = sys::AF_INET6 as u8;
        addr[23] = 1; // ::1
        28
    } else {
        addr[0] = sys::AF_INET as u8;
        addr[4..8].copy_from_slice(&[127, 0, 0, 1]);
        16
    };
    let listener = sys::socket(info.domain, sys::SOCK_STREAM | sys::SOCK_CLOEXEC, 0)?;
    sys::bind(listener.raw(), &addr[..len])?;
    sys::listen(listener.raw(), 1)?;
    let mut bound = [0u8; sys::SOCKADDR_MAX];
    let n = sys::getsockname(listener.raw(), &mut bound)?;
    let sock = sys::socket(info.domain, sys::SOCK_STREAM, 0)?;
    sys::connect(sock.raw(), &bound[..n])?;
    let other = sys::accept(listener.raw(), sys::SOCK_CLOEXEC)?;
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Linger {
        on: i32,
        secs: i32,
    }
    sys::setsockopt(other.raw(), sys::SOL_SOCKET, sys::SO_LINGER, &Linger { on: 1, secs: 0 })?;
    drop(other);
    Ok(sock)
}

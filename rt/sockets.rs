//! Sockets at checkpoint time: family, type and protocol, address, listen state,
//! options, the peer, and the bytes queued on Unix socket pairs inside the process.

use syscalls::Errno;

use mtcp_core::arena::ArenaVec;
use mtcp_core::image::*;
use mtcp_core::sys;

/// Appends the SocketInfo of socket `fd` (inode `inode`), and for Unix and IP sockets
/// its SocketState, to `out`. `earlier` are the records taken so far (a dup of one of
/// them is recorded as such). Ok(false): not a socket the kernel would describe.
pub fn capture(fd: u32, inode: u64, earlier: &[FdRecord], out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    let fd = fd as i32;
    let Ok((domain, kind, protocol)) = sys::socket_kind(fd) else {
        return Ok(false);
    };
    let info = SocketInfo {
        domain,
        kind,
        protocol,
        reserved: 0,
    };
    push_all(out, as_bytes(&info))?;
    if domain == AF_NETLINK {
        // sockaddr_nl: family, padding, port id, groups.
        let mut addr = [0u8; sys::SOCKADDR_MAX];
        let n = sys::getsockname(fd, &mut addr).unwrap_or(0);
        let word = |at: usize| {
            if n >= at + 4 {
                u32::from_le_bytes([addr[at], addr[at + 1], addr[at + 2], addr[at + 3]])
            } else {
                0
            }
        };
        let state = NetlinkState {
            portid: word(4),
            groups: word(8),
            cookies: 0,
            reserved: 0,
        };
        push_all(out, as_bytes(&state))?;
        return Ok(true);
    }
    if !matches!(domain, sys::AF_UNIX | sys::AF_INET | sys::AF_INET6) {
        return Ok(true);
    }
    let mut s = SocketState::default();
    if let Some(r) = earlier.iter().find(|r| r.kind == FD_SOCKET && r.inode == inode) {
        s.same_as = r.fd;
    }
    let flag = |level, opt, bit| match sys::getsockopt_int(fd, level, opt) {
        Ok(v) if v != 0 => bit,
        _ => 0,
    };
    s.options = flag(sys::SOL_SOCKET, sys::SO_REUSEADDR, SOCKOPT_REUSEADDR)
        | flag(sys::SOL_SOCKET, sys::SO_REUSEPORT, SOCKOPT_REUSEPORT)
        | flag(sys::SOL_SOCKET, sys::SO_KEEPALIVE, SOCKOPT_KEEPALIVE);
    if domain != sys::AF_UNIX && kind == sys::SOCK_STREAM {
        s.options |= flag(sys::IPPROTO_TCP, sys::TCP_NODELAY, SOCKOPT_NODELAY);
    }
    if domain == sys::AF_INET6 {
        s.options |= flag(sys::IPPROTO_IPV6, sys::IPV6_V6ONLY, SOCKOPT_V6ONLY);
    }
    s.rcvbuf = sys::getsockopt_int(fd, sys::SOL_SOCKET, sys::SO_RCVBUF).unwrap_or(0) as u32;
    s.sndbuf = sys::getsockopt_int(fd, sys::SOL_SOCKET, sys::SO_SNDBUF).unwrap_or(0) as u32;
    s.addr_len = sys::getsockname(fd, &mut s.addr).unwrap_or(0) as u32;
    let listening = sys::getsockopt_int(fd, sys::SOL_SOCKET, sys::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let diag = if domain == sys::AF_UNIX {
        sys::unix_diag(inode).ok()
    } else {
        None
    };
    if listening {
        s.state = SOCKET_LISTENING;
        // Unix: the backlog sock_diag reports. TCP: the kernel shows it to no one but
        // inet_diag dumps; SOMAXCONN, which the kernel caps at net.core.somaxconn.
        s.backlog = diag.map_or(0, |d| d.max_backlog);
        if s.backlog == 0 {
            s.backlog = SOMAXCONN;
        }
    } else if let Ok(n) = sys::getpeername(fd, &mut s.peer) {
        s.peer_len = n as u32;
        s.state = SOCKET_CONNECTED;
        s.peer_inode = diag.map_or(0, |d| d.peer_inode as u64);
    } else if is_bound(domain, s.addr()) {
        s.state = SOCKET_BOUND;
    }
    push_all(out, as_bytes(&s))?;
    Ok(true)
}

/// The backlog a TCP listener gets back.
const SOMAXCONN: u32 = 4096;

/// Whether a getsockname address names something: a port, or a Unix path or abstract name.
fn is_bound(domain: u32, addr: &[u8]) -> bool {
    match domain {
        sys::AF_UNIX => addr.len() > 2,
        _ => addr.len() >= 4 && (addr[2] != 0 || addr[3] != 0),
    }
}

/// For each Unix socket connected to another socket the process holds: marks it
/// SOCKET_PAIR, and records the bytes waiting to be read on it (a stream's peeked at;
/// datagrams read out, then sent straight back from the peer so the running process
/// loses nothing). The record's
/// payload is written again at the end of `out`, with its messages after it.
pub fn capture_pairs(
    records: &[FdRecord],
    data_ranges: &mut [(usize, usize)],
    out: &mut ArenaVec<u8>,
) -> Result<(), Errno> {
    for i in 0..records.len() {
        let r = records[i];
        let (start, end) = data_ranges[i];
        let Some((mut s, _)) = SocketState::of(&r, &out.as_slice()[start..end]) else {
            continue;
        };
        if s.state != SOCKET_CONNECTED || s.peer_inode == 0 || s.same_as != NOT_SHARED {
            continue;
        }
        let Some(peer) = records.iter().find(|p| p.kind == FD_SOCKET && p.inode == s.peer_inode) else {
            continue;
        };
        let Some(info) = SocketInfo::of(&r, &out.as_slice()[start..end]) else {
            continue;
        };
        s.state = SOCKET_PAIR;
        let head = out.len();
        push_all(out, as_bytes(&info))?;
        push_all(out, as_bytes(&s))?;
        let queued = out.len();
        if info.kind == sys::SOCK_STREAM && peek_stream(r.fd as i32, out)? {
            data_ranges[i] = (head, out.len());
            continue;
        }
        let read = read_queue(r.fd as i32, info.kind == sys::SOCK_STREAM, out);
        // What was read goes back even if reading stopped early, so the process keeps it.
        resend(peer.fd as i32, SocketMessages::new(&out.as_slice()[queued..]))?;
        read?;
        data_ranges[i] = (head, out.len());
    }
    Ok(())
}

/// Copies all that waits on the stream socket `fd` into `out` as one message without
/// taking it: a Unix stream's MSG_PEEK reads on across its queue. False (and nothing
/// added) where it cannot: the program set SO_PEEK_OFF (a peek would move it), or the
/// queue holds descriptors in flight (a peek stops there).
fn peek_stream(fd: i32, out: &mut ArenaVec<u8>) -> Result<bool, Errno> {
    const SO_PEEK_OFF: u32 = 42;
    if sys::getsockopt_int(fd, sys::SOL_SOCKET, SO_PEEK_OFF) != Ok(-1) {
        return Ok(false);
    }
    let want = sys::bytes_readable(fd)?;
    if want == 0 {
        return Ok(true);
    }
    let at = out.len();
    let room = push_all(out, &(want as u32).to_le_bytes()).and_then(|_| (0..want).try_for_each(|_| out.push(0)));
    let got = room.and_then(|_| sys::recv(fd, &mut out.as_mut_slice()[at + 4..], sys::MSG_PEEK | sys::MSG_DONTWAIT));
    match got {
        Ok(n) if n == want => Ok(true),
        Ok(_) => {
            out.truncate(at);
            Ok(false)
        }
        Err(e) => {
            out.truncate(at);
            Err(e)
        }
    }
}

/// Reads what waits on `fd` into `out` as messages (a length, then the bytes): one per
/// datagram, or the stream's bytes in chunks.
fn read_queue(fd: i32, stream: bool, out: &mut ArenaVec<u8>) -> Result<(), Errno> {
    const MSG_TRUNC: usize = 0x20;
    loop {
        let want = if stream {
            match sys::bytes_readable(fd)? {
                0 => return Ok(()),
                n => n.min(1 << 16),
            }
        } else {
            // The next datagram's whole length, without taking it.
            let mut none = [0u8; 0];
            match sys::recv(fd, &mut none, sys::MSG_PEEK | MSG_TRUNC | sys::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(e),
            }
        };
        let at = out.len();
        let room = push_all(out, &(want as u32).to_le_bytes()).and_then(|_| (0..want).try_for_each(|_| out.push(0)));
        let got = room.and_then(|_| sys::recv(fd, &mut out.as_mut_slice()[at + 4..], sys::MSG_DONTWAIT));
        let got = match got {
            Ok(n) => n,
            Err(e) => {
                out.truncate(at); // only whole messages stay
                return Err(e);
            }
        };
        if got != want {
            // A stream gave less than FIONREAD said: keep what came.
            out.as_mut_slice()[at..at + 4].copy_from_slice(&(got as u32).to_le_bytes());
            out.truncate(at + 4 + got);
        }
    }
}

/// Sends `messages` from `fd`, each as it was (one datagram each for datagram sockets).
pub fn resend(fd: i32, messages: SocketMessages) -> Result<(), Errno> {
    for m in messages.flatten() {
        sys::send_all(fd, m, sys::MSG_DONTWAIT | sys::MSG_NOSIGNAL)?;
    }
    Ok(())
}

fn push_all(out: &mut ArenaVec<u8>, bytes: &[u8]) -> Result<(), Errno> {
    for &b in bytes {
        out.push(b)?;
    }
    Ok(())
}

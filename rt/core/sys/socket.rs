//! Socket syscalls beyond socket(2): addresses, options, connections, queued bytes.

use syscalls::{Errno, Sysno};

use super::{fd_arg, Fd};

pub const AF_UNIX: u32 = 1;
pub const AF_INET: u32 = 2;
pub const AF_INET6: u32 = 10;
pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_SEQPACKET: u32 = 5;
pub const SOCK_NONBLOCK: u32 = 0o4000;
pub const SOCK_CLOEXEC: u32 = 0o2000000;

pub const SOL_SOCKET: u32 = 1;
pub const SO_REUSEADDR: u32 = 2;
pub const SO_SNDBUF: u32 = 7;
pub const SO_RCVBUF: u32 = 8;
pub const SO_KEEPALIVE: u32 = 9;
pub const SO_LINGER: u32 = 13;
pub const SO_REUSEPORT: u32 = 15;
pub const SO_ACCEPTCONN: u32 = 30;
pub const IPPROTO_TCP: u32 = 6;
pub const TCP_NODELAY: u32 = 1;
pub const IPPROTO_IPV6: u32 = 41;
pub const IPV6_V6ONLY: u32 = 26;

pub const MSG_PEEK: usize = 2;
pub const MSG_DONTWAIT: usize = 0x40;
pub const MSG_NOSIGNAL: usize = 0x4000;

/// The largest socket address (struct sockaddr_storage).
pub const SOCKADDR_MAX: usize = 128;

/// getsockopt of an int option. EBADF, ENOTSOCK, ENOPROTOOPT (an option the socket's
/// protocol does not have).
pub fn getsockopt_int(fd: i32, level: u32, opt: u32) -> Result<i32, Errno> {
    let mut value: i32 = 0;
    let mut len: u32 = 4;
    // SAFETY: the kernel writes at most `len` (4) bytes into value and the length into
    // len, both valid for the call.
    unsafe {
        syscalls::syscall5(
            Sysno::getsockopt,
            fd_arg(fd),
            level as usize,
            opt as usize,
            &mut value as *mut i32 as usize,
            &mut len as *mut u32 as usize,
        )?
    };
    Ok(value)
}

/// setsockopt of a plain value (an int, a struct linger). EBADF, ENOTSOCK, ENOPROTOOPT,
/// EINVAL, EPERM as the kernel says.
pub fn setsockopt<T: Copy>(fd: i32, level: u32, opt: u32, value: &T) -> Result<(), Errno> {
    // SAFETY: the kernel reads size_of::<T>() bytes from value, valid for the call.
    unsafe {
        syscalls::syscall5(
            Sysno::setsockopt,
            fd_arg(fd),
            level as usize,
            opt as usize,
            value as *const T as usize,
            core::mem::size_of::<T>(),
        )
        .map(|_| ())
    }
}

fn name_call(call: Sysno, fd: i32, buf: &mut [u8; SOCKADDR_MAX]) -> Result<usize, Errno> {
    let mut len = SOCKADDR_MAX as u32;
    // SAFETY: the kernel writes at most `len` bytes into buf and the full length into len.
    unsafe {
        syscalls::syscall3(
            call,
            fd_arg(fd),
            buf.as_mut_ptr() as usize,
            &mut len as *mut u32 as usize,
        )?
    };
    Ok((len as usize).min(SOCKADDR_MAX))
}

/// The socket's own address and its length (getsockname). EBADF, ENOTSOCK.
pub fn getsockname(fd: i32, buf: &mut [u8; SOCKADDR_MAX]) -> Result<usize, Errno> {
    name_call(Sysno::getsockname, fd, buf)
}

/// The connected peer's address and its length (getpeername). ENOTCONN when the socket
/// is not connected; EBADF, ENOTSOCK.
pub fn getpeername(fd: i32, buf: &mut [u8; SOCKADDR_MAX]) -> Result<usize, Errno> {
    name_call(Sysno::getpeername, fd, buf)
}

/// bind(2). EADDRINUSE, EACCES, EADDRNOTAVAIL, EINVAL as the kernel says.
pub fn bind(fd: i32, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: the kernel reads addr.len() bytes of addr.
    unsafe { syscalls::syscall3(Sysno::bind, fd_arg(fd), addr.as_ptr() as usize, addr.len()).map(|_| ()) }
}

/// listen(2). EADDRINUSE (an unbound socket's automatic port), EOPNOTSUPP.
pub fn listen(fd: i32, backlog: u32) -> Result<(), Errno> {
    // SAFETY: listen touches no memory of ours.
    unsafe { syscalls::syscall2(Sysno::listen, fd_arg(fd), backlog as usize).map(|_| ()) }
}

/// connect(2), retried on EINTR. ECONNREFUSED, ENOENT (no socket at a Unix path),
/// EINPROGRESS (a non-blocking socket), ETIMEDOUT and the like as the kernel says.
pub fn connect(fd: i32, addr: &[u8]) -> Result<(), Errno> {
    loop {
        // SAFETY: the kernel reads addr.len() bytes of addr.
        match unsafe { syscalls::syscall3(Sysno::connect, fd_arg(fd), addr.as_ptr() as usize, addr.len()) } {
            Err(Errno::EINTR) => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// accept4 of one waiting connection, its address not asked for. EAGAIN (none waits
/// on a non-blocking socket), EINVAL (not listening), EMFILE.
pub fn accept(fd: i32, flags: u32) -> Result<Fd, Errno> {
    // SAFETY: no address buffer is given; the kernel writes nothing of ours.
    let r = unsafe { syscalls::syscall4(Sysno::accept4, fd_arg(fd), 0, 0, flags as usize)? };
    Ok(Fd::adopt(r as i32))
}

/// socketpair(2): two connected sockets. EAFNOSUPPORT, EOPNOTSUPP, EMFILE.
pub fn socketpair(domain: u32, kind: u32) -> Result<(Fd, Fd), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two ints into fds.
    unsafe {
        syscalls::syscall4(
            Sysno::socketpair,
            domain as usize,
            kind as usize,
            0,
            fds.as_mut_ptr() as usize,
        )?
    };
    Ok((Fd::adopt(fds[0]), Fd::adopt(fds[1])))
}

/// recv(2) into buf with `flags` (MSG_DONTWAIT, MSG_PEEK): one message of a datagram
/// socket (cut to buf, as the kernel does), or some bytes of a stream. EAGAIN when
/// nothing waits and the call would block; ECONNRESET, ENOTCONN as the kernel says.
pub fn recv(fd: i32, buf: &mut [u8], flags: usize) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf; no address is asked for.
    unsafe {
        syscalls::syscall6(
            Sysno::recvfrom,
            fd_arg(fd),
            buf.as_mut_ptr() as usize,
            buf.len(),
            flags,
            0,
            0,
        )
    }
}

/// send(2) of buf with `flags` (MSG_DONTWAIT, MSG_NOSIGNAL): how many bytes went (all of
/// a datagram, or part of a stream's). EAGAIN when the peer's queue is full; EPIPE,
/// ECONNREFUSED, EMSGSIZE as the kernel says.
pub fn send(fd: i32, buf: &[u8], flags: usize) -> Result<usize, Errno> {
    // SAFETY: the kernel reads at most buf.len() bytes of buf; no address is given.
    unsafe { syscalls::syscall6(Sysno::sendto, fd_arg(fd), buf.as_ptr() as usize, buf.len(), flags, 0, 0) }
}

/// send of all of buf on a stream socket, or buf as one datagram. EAGAIN when the
/// peer's queue is full (part may have gone), and send's errors.
pub fn send_all(fd: i32, mut buf: &[u8], flags: usize) -> Result<(), Errno> {
    loop {
        let n = send(fd, buf, flags)?;
        buf = &buf[n.min(buf.len())..];
        if buf.is_empty() || n == 0 {
            return Ok(());
        }
    }
}

const NETLINK_SOCK_DIAG: u32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const UDIAG_SHOW_PEER: u32 = 4;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;

/// struct nlmsghdr followed by struct unix_diag_req.
#[repr(C)]
struct UnixDiagRequest {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
    family: u8,
    protocol: u8,
    pad: u16,
    states: u32,
    ino: u32,
    show: u32,
    cookie: [u32; 2],
}
static_assertions::const_assert_eq!(core::mem::size_of::<UnixDiagRequest>(), 40);

/// What sock_diag tells of a Unix socket: the inode of its peer (0 for none) and, for
/// a listener, its backlog (0 otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnixDiag {
    pub peer_inode: u32,
    pub max_backlog: u32,
}

/// Asks NETLINK_SOCK_DIAG about the Unix socket with inode `ino` (what `ss -x` shows).
/// ENOENT when the kernel knows no such socket (or has no unix_diag); the errors of
/// socket, send and recv; EPROTO for an answer that cannot be read.
pub fn unix_diag(ino: u64) -> Result<UnixDiag, Errno> {
    let nl = super::socket(16, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)?;
    let req = UnixDiagRequest {
        len: core::mem::size_of::<UnixDiagRequest>() as u32,
        kind: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST,
        seq: 1,
        pid: 0,
        family: AF_UNIX as u8,
        protocol: 0,
        pad: 0,
        states: u32::MAX,
        ino: ino as u32,
        show: UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN,
        cookie: [u32::MAX; 2],
    };
    // SAFETY: UnixDiagRequest is plain data without padding; the slice covers exactly it.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            &req as *const UnixDiagRequest as *const u8,
            core::mem::size_of::<UnixDiagRequest>(),
        )
    };
    send(nl.raw(), bytes, 0)?;
    let mut buf = [0u8; 1024];
    // The kernel answers within send; never wait for an answer that is not there.
    let n = recv(nl.raw(), &mut buf, MSG_DONTWAIT)?;
    let msg = &buf[..n];
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_le_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], i: usize| b.get(i..i + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    let len = u32_at(msg, 0).ok_or(Errno::EPROTO)? as usize;
    let kind = u16_at(msg, 4).ok_or(Errno::EPROTO)?;
    if kind == NLMSG_ERROR {
        let e = u32_at(msg, 16).ok_or(Errno::EPROTO)? as i32;
        return Err(Errno::new(-e));
    }
    if kind != SOCK_DIAG_BY_FAMILY || len > n || len < 32 {
        return Err(Errno::EPROTO);
    }
    // nlmsghdr (16), unix_diag_msg (16), then the attributes, each 4-byte aligned.
    let mut out = UnixDiag::default();
    let mut at = 32;
    while at + 4 <= len {
        let alen = u16_at(msg, at).ok_or(Errno::EPROTO)? as usize;
        let akind = u16_at(msg, at + 2).ok_or(Errno::EPROTO)?;
        if alen < 4 || at + alen > len {
            return Err(Errno::EPROTO);
        }
        match akind {
            UNIX_DIAG_PEER => out.peer_inode = u32_at(msg, at + 4).ok_or(Errno::EPROTO)?,
            UNIX_DIAG_RQLEN => out.max_backlog = u32_at(msg, at + 8).ok_or(Errno::EPROTO)?,
            _ => {}
        }
        at += (alen + 3) & !3;
    }
    Ok(out)
}

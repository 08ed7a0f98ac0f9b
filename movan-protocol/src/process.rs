//! Process set-up shared by the server binaries: the open-file limit, and TCP listeners with a chosen backlog.

use std::io;
use std::net::SocketAddr;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use socket2::{Domain, Protocol, Socket, Type};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so that the connection limits in the config, not the default
/// soft limit of 1,024 open files, decide how many clients a server holds. Returns the (soft, hard) limit in force.
pub fn raise_open_file_limit() -> nix::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    getrlimit(Resource::RLIMIT_NOFILE)
}

/// A non-blocking TCP listener on `addr` with `SO_REUSEADDR` and a listen backlog of `backlog` connections (the
/// kernel caps it at `net.core.somaxconn`). The standard library and tokio always use 128, which a burst of
/// connections overflows.
pub fn tcp_listener(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_soft_open_file_limit_reaches_the_hard_one() {
        let (soft, hard) = raise_open_file_limit().unwrap();
        assert_eq!(soft, hard);
    }

    #[test]
    fn a_listener_binds_with_its_backlog_and_accepts() {
        let listener = tcp_listener("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        listener.set_nonblocking(false).unwrap();
        assert!(listener.accept().is_ok());
    }
}

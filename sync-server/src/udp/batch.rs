//! One UDP socket read and written in batches: `recvmmsg` takes up to [`BATCH`] datagrams per system call and
//! `sendmmsg` sends up to [`BATCH`] datagrams to any mix of addresses per call (through `nix`'s safe wrappers).

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::Transmit;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// A UDP socket with the buffers for batched receives and sends.
///
/// `nix`'s message headers hold raw pointers (not `Send`), so each call builds its own: a few kilobytes of
/// allocation per system call of up to [`BATCH`] datagrams.
pub struct BatchSocket {
    socket: UdpSocket,
    recv_bufs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for BatchSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSocket").field("socket", &self.socket).finish_non_exhaustive()
    }
}

impl BatchSocket {
    /// Wraps `socket`; datagrams longer than `max_datagram` are cut (and then dropped as malformed).
    pub fn new(socket: UdpSocket, max_datagram: usize) -> Self {
        Self {
            socket,
            // One byte more than allowed, so that an over-long datagram shows as such.
            recv_bufs: vec![vec![0; max_datagram + 1]; BATCH],
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits until datagrams can be read.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.socket.readable().await
    }

    /// Reads the datagrams waiting now (one system call, up to [`BATCH`]) into `each`; returns how many, 0 when
    /// none is waiting.
    pub fn try_recv(&mut self, mut each: impl FnMut(SocketAddr, &[u8])) -> std::io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let bufs = &mut self.recv_bufs;
        let mut got: Vec<(Option<SocketAddr>, usize)> = Vec::with_capacity(BATCH);
        let result = self.socket.try_io(Interest::READABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let results = recvmmsg(fd, &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
                .map_err(std::io::Error::from)?;
            for r in results {
                got.push((r.address.and_then(|a: SockaddrStorage| to_std(&a)), r.bytes));
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        }
        let n = got.len();
        for (i, (from, len)) in got.into_iter().enumerate() {
            if let Some(from) = from {
                each(from, &self.recv_bufs[i][..len]);
            }
        }
        Ok(n)
    }

    /// Sends every transmit, [`BATCH`] per system call, waiting while the socket's buffer is full.
    pub async fn send_all(&mut self, transmits: &[Transmit]) -> std::io::Result<()> {
        let mut rest = transmits;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(BATCH)];
            let sent = loop {
                self.socket.writable().await?;
                let fd = self.socket.as_raw_fd();
                let result = self.socket.try_io(Interest::WRITABLE, || {
                    let slices: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|t| [IoSlice::new(&t.bytes)]).collect();
                    let addrs: Vec<Option<SockaddrStorage>> =
                        chunk.iter().map(|t| Some(SockaddrStorage::from(t.to))).collect();
                    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
                    let results = sendmmsg(fd, &mut headers, slices.iter(), addrs, [], MsgFlags::MSG_DONTWAIT)
                        .map_err(std::io::Error::from)?;
                    Ok(results.count())
                });
                match result {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    // A datagram the kernel refuses (an unreachable or invalid address): skip it, not the batch.
                    Err(_) => break 1,
                }
            };
            rest = &rest[sent.max(1).min(rest.len())..];
        }
        Ok(())
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_go_out_and_come_in() -> std::io::Result<()> {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        let c = UdpSocket::bind("127.0.0.1:0").await?;
        let (b_addr, c_addr) = (b.local_addr()?, c.local_addr()?);
        let mut a = BatchSocket::new(a, 1400);
        let transmits: Vec<Transmit> = (0..150u32)
            .map(|i| Transmit {
                to: if i % 2 == 0 { b_addr } else { c_addr },
                bytes: bytes::Bytes::from(i.to_be_bytes().to_vec()),
            })
            .collect();
        a.send_all(&transmits).await?;
        let mut b = BatchSocket::new(b, 1400);
        let mut got = Vec::new();
        while got.len() < 75 {
            b.readable().await?;
            b.try_recv(|from, d| {
                got.push((from, u32::from_be_bytes(d.try_into().unwrap_or_default())));
            })?;
        }
        let a_addr = a.local_addr()?;
        assert!(got.iter().all(|(from, _)| *from == a_addr));
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), (0..150).step_by(2).collect::<Vec<_>>());
        let mut buf = [0u8; 8];
        let (n, _) = c.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], &1u32.to_be_bytes());
        Ok(())
    }
}

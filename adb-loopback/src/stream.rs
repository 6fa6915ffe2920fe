//! Streams multiplexed over one connection: each has a local id (ours) and a remote
//! id (the host's); data arrives in `WRTE` messages and every `WRTE` we send waits for
//! the host's `OKAY` before the next (adb's flow control).

use crate::message::{Message, A_CLSE, A_WRTE};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Entry {
    data: Sender<Vec<u8>>,
    ack: Sender<()>,
    closed: Arc<AtomicBool>,
}

/// One connection to the adb server.
pub(crate) struct Conn {
    sock: Mutex<TcpStream>,
    max_payload: AtomicUsize,
    next_id: AtomicU32,
    streams: Mutex<HashMap<u32, Entry>>,
}

impl Conn {
    pub(crate) fn new(sock: TcpStream) -> Conn {
        Conn {
            sock: Mutex::new(sock),
            max_payload: AtomicUsize::new(4096),
            next_id: AtomicU32::new(1),
            streams: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_max_payload(&self, n: usize) {
        self.max_payload.store(n, Ordering::SeqCst);
    }

    pub(crate) fn send(&self, m: &Message) -> io::Result<()> {
        let mut s = self
            .sock
            .lock()
            .map_err(|_| io::Error::other("connection lock poisoned"))?;
        m.write_to(&mut *s)
    }

    /// Registers a stream opened by the host (its id `remote`).
    pub(crate) fn open(self: &Arc<Self>, remote: u32) -> Stream {
        let local = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (dtx, drx) = channel();
        let (atx, arx) = channel();
        let closed = Arc::new(AtomicBool::new(false));
        if let Ok(mut m) = self.streams.lock() {
            m.insert(
                local,
                Entry {
                    data: dtx,
                    ack: atx,
                    closed: closed.clone(),
                },
            );
        }
        Stream {
            reader: StreamReader {
                data: drx,
                buf: Vec::new(),
                pos: 0,
            },
            writer: Arc::new(StreamWriter {
                conn: self.clone(),
                local,
                remote,
                ack: Mutex::new(arx),
                closed,
            }),
        }
    }

    /// Queues data for stream `local`; false when it is unknown.
    pub(crate) fn deliver(&self, local: u32, data: Vec<u8>) -> bool {
        match self.streams.lock() {
            Ok(m) => m.get(&local).is_some_and(|e| e.data.send(data).is_ok()),
            Err(_) => false,
        }
    }

    pub(crate) fn ack(&self, local: u32) {
        if let Ok(m) = self.streams.lock() {
            if let Some(e) = m.get(&local) {
                let _ = e.ack.send(());
            }
        }
    }

    /// The host closed stream `local`: its reads end, its writes fail.
    pub(crate) fn remote_closed(&self, local: u32) {
        if let Ok(mut m) = self.streams.lock() {
            if let Some(e) = m.remove(&local) {
                e.closed.store(true, Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn close_all(&self) {
        if let Ok(mut m) = self.streams.lock() {
            for (_, e) in m.drain() {
                e.closed.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A stream's incoming bytes, as a [`Read`] (EOF when the host closes it).
pub struct StreamReader {
    data: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.data.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A stream's outgoing side; shared by the threads of a service.
pub struct StreamWriter {
    conn: Arc<Conn>,
    local: u32,
    remote: u32,
    ack: Mutex<Receiver<()>>,
    closed: Arc<AtomicBool>,
}

impl StreamWriter {
    /// Sends `bytes` in `WRTE` messages, waiting for the host's `OKAY` after each.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let ack = self
            .ack
            .lock()
            .map_err(|_| io::Error::other("stream lock poisoned"))?;
        let max = self.conn.max_payload.load(Ordering::SeqCst).max(1);
        for chunk in bytes.chunks(max) {
            if self.closed.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"));
            }
            self.conn.send(&Message::new(
                A_WRTE,
                self.local,
                self.remote,
                chunk.to_vec(),
            ))?;
            loop {
                match ack.recv_timeout(Duration::from_millis(200)) {
                    Ok(()) => break,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if self.closed.load(Ordering::SeqCst) {
                            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"));
                        }
                    }
                    Err(_) => {
                        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"))
                    }
                }
            }
        }
        Ok(())
    }

    /// True once the host closed the stream (or the connection ended).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the stream from our side.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut m) = self.conn.streams.lock() {
            m.remove(&self.local);
        }
        let _ = self
            .conn
            .send(&Message::new(A_CLSE, self.local, self.remote, Vec::new()));
    }
}

/// A stream opened by the host for a service.
pub struct Stream {
    /// Incoming bytes.
    pub reader: StreamReader,
    /// Outgoing bytes.
    pub writer: Arc<StreamWriter>,
}

impl Stream {
    pub(crate) fn local_id(&self) -> u32 {
        self.writer.local
    }
}

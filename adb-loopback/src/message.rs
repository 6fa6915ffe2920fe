//! The adb transport message: a 24-byte header (command, arg0, arg1, payload length,
//! payload checksum, magic = command XOR 0xffffffff, all little-endian `u32`) followed
//! by the payload.

use std::io::{self, Read, Write};

/// `CNXN`: connect, carrying the protocol version, the largest payload and a banner.
pub const A_CNXN: u32 = 0x4e58_4e43;
/// `OPEN`: open a stream to a service (`arg0` = the opener's local id).
pub const A_OPEN: u32 = 0x4e45_504f;
/// `OKAY`: stream ready / acknowledgement of one `WRTE`.
pub const A_OKAY: u32 = 0x5941_4b4f;
/// `WRTE`: stream data.
pub const A_WRTE: u32 = 0x4554_5257;
/// `CLSE`: close a stream.
pub const A_CLSE: u32 = 0x4553_4c43;
/// `AUTH`: authentication (never sent by this daemon).
pub const A_AUTH: u32 = 0x4854_5541;

/// The protocol version this daemon speaks (adb's `A_VERSION` since 2016: checksums
/// are optional).
pub const A_VERSION: u32 = 0x0100_0001;
/// The largest payload this daemon accepts (adb's `MAX_PAYLOAD`).
pub const MAX_PAYLOAD: u32 = 1024 * 1024;

/// One transport message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The command (`A_CNXN`, ...).
    pub command: u32,
    /// First argument.
    pub arg0: u32,
    /// Second argument.
    pub arg1: u32,
    /// The payload.
    pub data: Vec<u8>,
}

impl Message {
    /// A message with a payload.
    pub fn new(command: u32, arg0: u32, arg1: u32, data: Vec<u8>) -> Message {
        Message {
            command,
            arg0,
            arg1,
            data,
        }
    }

    /// Writes the header and the payload.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let sum: u32 = self
            .data
            .iter()
            .fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
        let len = u32::try_from(self.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "payload too large"))?;
        let mut buf = Vec::with_capacity(24 + self.data.len());
        for v in [
            self.command,
            self.arg0,
            self.arg1,
            len,
            sum,
            self.command ^ 0xffff_ffff,
        ] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&self.data);
        w.write_all(&buf)?;
        w.flush()
    }

    /// Reads one message; rejects a bad magic or a payload over `max_payload`.
    pub fn read_from(r: &mut impl Read, max_payload: u32) -> io::Result<Message> {
        let mut h = [0u8; 24];
        r.read_exact(&mut h)?;
        let word =
            |i: usize| u32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
        let (command, arg0, arg1, len, magic) = (word(0), word(1), word(2), word(3), word(5));
        if magic != command ^ 0xffff_ffff {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad magic {magic:#x} for command {command:#x}"),
            ));
        }
        if len > max_payload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("payload of {len} bytes exceeds {max_payload}"),
            ));
        }
        let mut data = vec![0u8; len as usize];
        r.read_exact(&mut data)?;
        Ok(Message {
            command,
            arg0,
            arg1,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_magic() {
        let m = Message::new(A_WRTE, 3, 7, b"hello".to_vec());
        let mut buf = Vec::new();
        m.write_to(&mut buf).unwrap();
        assert_eq!(&buf[0..4], b"WRTE");
        assert_eq!(Message::read_from(&mut &buf[..], MAX_PAYLOAD).unwrap(), m);
        buf[20] ^= 1;
        assert!(Message::read_from(&mut &buf[..], MAX_PAYLOAD).is_err());
    }
}

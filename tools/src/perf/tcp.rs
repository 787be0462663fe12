//! The raw TCP baseline: `TCP_NODELAY`, blocking reads and writes, fixed-size
//! messages. The server halves run in the peer process (or a thread), the client
//! halves in the calling thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::measure::{Row, STOP, Transport, bw_row, lat_row, sample};
use super::spec::Spec;
use super::{Res, err};

/// Largest read of the raw TCP bandwidth receiver.
const TCP_RX_CHUNK: usize = 256 * 1024;

/// Server of the ping-pong: echoes every `size`-octet message until one starts with
/// [`STOP`].
pub fn lat_server(spec: &Spec, mut s: TcpStream) -> Res<u64> {
    let mut buf = vec![0u8; spec.size];
    loop {
        s.read_exact(&mut buf).map_err(err("tcp server read"))?;
        if buf[0] == STOP {
            return Ok(0);
        }
        s.write_all(&buf).map_err(err("tcp server write"))?;
    }
}

/// Client of the ping-pong of `size`-octet messages for `cap` (at most `max`
/// samples).
pub fn lat_client(spec: &Spec, cap: Duration, mut s: TcpStream) -> Res<Row> {
    let size = spec.size;
    let mut out = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    let (samples, trips) = sample(cap, spec.max, 2.0, || {
        let t = Instant::now();
        s.write_all(&out).map_err(err("tcp write"))?;
        s.read_exact(&mut back).map_err(err("tcp read"))?;
        Ok(t.elapsed())
    })?;
    out[0] = STOP;
    s.write_all(&out).map_err(err("tcp write"))?;
    Ok(lat_row(Transport::Tcp, "send", size, samples).with_trips(trips))
}

/// Server of the bandwidth test: counts the octets until the client shuts its
/// side down, then sends the count back.
pub fn bw_server(_: &Spec, mut s: TcpStream) -> Res<u64> {
    let mut buf = vec![0u8; TCP_RX_CHUNK];
    let mut total: u64 = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("tcp server read: {e}")),
        }
    }
    s.write_all(&total.to_le_bytes())
        .map_err(err("tcp server write"))?;
    Ok(total)
}

/// Client of the unidirectional bandwidth test: `size`-octet messages for `cap` (at
/// most `max`).
pub fn bw_client(spec: &Spec, cap: Duration, mut s: TcpStream) -> Res<Row> {
    let (size, max) = (spec.size, spec.max);
    let out = vec![0x5au8; size];
    let t = Instant::now();
    let mut msgs = 0usize;
    while msgs < max && (msgs < 16 || t.elapsed() < cap) {
        s.write_all(&out).map_err(err("tcp write"))?;
        msgs += 1;
    }
    s.shutdown(Shutdown::Write).map_err(err("tcp shutdown"))?;
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).map_err(err("tcp read ack"))?;
    let secs = t.elapsed().as_secs_f64();
    let got = u64::from_le_bytes(ack);
    if got != (msgs * size) as u64 {
        return Err(format!(
            "tcp bw: receiver counted {got} octets, sent {}",
            msgs * size
        ));
    }
    Ok(bw_row(Transport::Tcp, "send", size, msgs, secs))
}

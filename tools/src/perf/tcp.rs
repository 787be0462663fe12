//! The raw TCP baseline: `TCP_NODELAY`, blocking reads and writes, fixed-size
//! messages, one server thread and the calling thread as client.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::measure::{Row, Transport, bw_row, lat_row, sample};
use super::{Res, err};

/// Largest read of the raw TCP bandwidth receiver.
const TCP_RX_CHUNK: usize = 256 * 1024;

/// Runs `server` on a thread and `client` on this one, over a loopback TCP
/// connection with `TCP_NODELAY` on both ends.
pub fn pair<RS: Send + 'static, RC>(
    server: impl FnOnce(TcpStream) -> Res<RS> + Send + 'static,
    client: impl FnOnce(TcpStream) -> Res<RC>,
) -> Res<(RS, RC)> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err("tcp bind"))?;
    let addr = listener.local_addr().map_err(err("tcp local_addr"))?;
    let h = thread::Builder::new()
        .name("perf-tcp-server".into())
        .spawn(move || {
            let (s, _) = listener.accept().map_err(err("tcp accept"))?;
            s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
            server(s)
        })
        .map_err(err("spawn"))?;
    let s = TcpStream::connect(addr).map_err(err("tcp connect"))?;
    s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
    let rc = client(s);
    let rs = h
        .join()
        .map_err(|_| "tcp server thread panicked".to_string())?;
    Ok((rs?, rc?))
}

/// Ping-pong latency of `size`-octet messages for `cap` (at most `max` samples).
pub fn lat(size: usize, cap: Duration, max: usize) -> Res<Row> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (_, samples) = pair(
        move |mut s| {
            let mut buf = vec![0u8; size];
            loop {
                s.read_exact(&mut buf).map_err(err("tcp server read"))?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                s.write_all(&buf).map_err(err("tcp server write"))?;
            }
        },
        |mut s| {
            let out = vec![0x5au8; size];
            let mut back = vec![0u8; size];
            let samples = sample(cap, max, 2.0, || {
                let t = Instant::now();
                s.write_all(&out).map_err(err("tcp write"))?;
                s.read_exact(&mut back).map_err(err("tcp read"))?;
                Ok(t.elapsed())
            })?;
            stop.store(true, Ordering::SeqCst);
            s.write_all(&out).map_err(err("tcp write"))?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(Transport::Tcp, "send", size, samples))
}

/// Unidirectional bandwidth of `size`-octet messages for `cap` (at most `max`).
pub fn bw(size: usize, cap: Duration, max: usize) -> Res<Row> {
    let (_, (msgs, secs)) = pair(
        |mut s| {
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
                .map_err(err("tcp server write"))
        },
        |mut s| {
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
            Ok((msgs, secs))
        },
    )?;
    Ok(bw_row(Transport::Tcp, "send", size, msgs, secs))
}

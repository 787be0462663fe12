//! RDMA Write: ping-pong latency (arrival detected by polling the last octet, or a
//! 0-octet Send after each Write) and windowed bandwidth.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eta_engine::{Access, RemoteRegion};

use super::eta::{EtaCfg, await_done, exchange_pair, pair, send_empty, windowed};
use super::measure::{Row, bw_row, lat_row, next, poll_octet, round_mark, sample, take_buf};
use super::{Res, err};

/// Write ping-pong with arrival detected by polling the last octet of the own region.
pub fn lat_poll(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (srv_x, cli_x) = exchange_pair();
    let last = size as u64 - 1;
    let (_, samples) = pair(
        cfg,
        move |conn| {
            let (region, peer) =
                srv_x.register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE)?;
            let mut sbuf = vec![0u8; size];
            let mut i = 0u64;
            loop {
                let v = round_mark(i);
                poll_octet(&region, &conn, last, v)?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                sbuf[size - 1] = v;
                conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
                i += 1;
            }
        },
        |conn| {
            let (region, peer) =
                cli_x.register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE)?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let mut i = 0u64;
            let samples = sample(cap, max, 2.0, || {
                let mut buf = sbuf.take().expect("write buffer");
                let v = round_mark(i);
                buf[size - 1] = v;
                let t = Instant::now();
                conn.post_write(1, buf, peer).map_err(err("post_write"))?;
                poll_octet(&region, &conn, last, v)?;
                let d = t.elapsed();
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client write")?,
                    "write",
                )?);
                i += 1;
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            let mut buf = sbuf.take().expect("write buffer");
            buf[size - 1] = round_mark(i);
            conn.post_write(1, buf, peer).map_err(err("post_write"))?;
            next(conn.send_cq(), &conn, spin, "client write")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "write", size, samples))
}

/// Write ping-pong with a 0-octet Send after each Write as the notification.
pub fn lat_send(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (srv_x, cli_x) = exchange_pair();
    let (_, samples) = pair(
        cfg,
        move |conn| {
            let (_region, peer) =
                srv_x.register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE)?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let mut sbuf = vec![0u8; size];
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
                conn.post_send(2, Vec::new(), Default::default())
                    .map_err(err("post_send"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
                next(conn.send_cq(), &conn, spin, "server send")?;
            }
        },
        |conn| {
            let (_region, peer) =
                cli_x.register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE)?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let samples = sample(cap, max, 2.0, || {
                let buf = sbuf.take().expect("write buffer");
                let t = Instant::now();
                conn.post_write(1, buf, peer).map_err(err("post_write"))?;
                conn.post_send(2, Vec::new(), Default::default())
                    .map_err(err("post_send"))?;
                let c = next(conn.recv_cq(), &conn, spin, "client recv")?;
                let d = t.elapsed();
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client write")?,
                    "write",
                )?);
                next(conn.send_cq(), &conn, spin, "client send")?;
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            send_empty(&conn, spin, "client send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "write+send", size, samples))
}

/// Windowed Writes of `size` octets (`window` in flight) for `cap` (at most `max`);
/// a 0-octet Send after the last marks the end.
pub fn bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, (msgs, secs)) = pair(
        cfg,
        move |conn| {
            srv_x.serve_region(&conn, vec![0; size], Access::REMOTE_WRITE, spin)?;
            send_empty(&conn, spin, "server ack")
        },
        |conn| {
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let peer = cli_x.swap(RemoteRegion {
                stag: eta_engine::Stag(0),
                to: 0,
            })?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, size, window, cap, max, t, |i, buf| {
                conn.post_write(i, buf, peer).map_err(err("post_write"))
            })?;
            // The Send follows the Writes on the wire: its arrival means all placed.
            send_empty(&conn, spin, "client end")?;
            await_done(&conn, spin)?;
            Ok((msgs, t.elapsed().as_secs_f64()))
        },
    )?;
    Ok(bw_row(cfg.transport(), "write", size, msgs, secs))
}

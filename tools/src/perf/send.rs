//! DDP Send: ping-pong latency and windowed bandwidth (`post_send` / `post_recv`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::eta::{EtaCfg, await_done, pair, send_empty, windowed};
use super::measure::{Row, bw_row, lat_row, next, sample, take_buf};
use super::{Res, err};

/// Ping-pong of `size`-octet Sends for `cap` (at most `max` samples).
pub fn lat(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (_, samples) = pair(
        cfg,
        move |conn| {
            conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            let mut sbuf = vec![0u8; size];
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                conn.post_send(1, sbuf, Default::default())
                    .map_err(err("post_send"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server send")?, "send")?;
            }
        },
        |conn| {
            conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let samples = sample(cap, max, 2.0, || {
                let buf = sbuf.take().expect("send buffer");
                let t = Instant::now();
                conn.post_send(1, buf, Default::default())
                    .map_err(err("post_send"))?;
                let c = next(conn.recv_cq(), &conn, spin, "client recv")?;
                let d = t.elapsed();
                if c.byte_len as usize != size {
                    return Err(format!("pong of {} octets, expected {size}", c.byte_len));
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client send")?,
                    "send",
                )?);
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            conn.post_send(1, sbuf.take().expect("send buffer"), Default::default())
                .map_err(err("post_send"))?;
            next(conn.send_cq(), &conn, spin, "client send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "send", size, samples))
}

/// Windowed Sends of `size` octets (`window` in flight) for `cap` (at most `max`).
pub fn bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (received, (msgs, secs)) = pair(
        cfg,
        move |conn| {
            for _ in 0..2 * window {
                conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            }
            let mut n = 0usize;
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if c.byte_len == 0 {
                    break;
                }
                n += 1;
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
            }
            send_empty(&conn, spin, "server ack")?;
            Ok(n)
        },
        |conn| {
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, size, window, cap, max, t, |i, buf| {
                conn.post_send(i, buf, Default::default())
                    .map_err(err("post_send"))
            })?;
            send_empty(&conn, spin, "client end")?;
            await_done(&conn, spin)?;
            Ok((msgs, t.elapsed().as_secs_f64()))
        },
    )?;
    if received != msgs {
        return Err(format!(
            "send bw: server received {received} messages of {msgs}"
        ));
    }
    Ok(bw_row(cfg.transport(), "send", size, msgs, secs))
}

//! DDP Send: ping-pong latency and windowed bandwidth (`post_send` / `post_recv`).

use std::time::{Duration, Instant};

use eta_engine::Connection;

use super::eta::{Swap, await_done, send_empty, windowed};
use super::measure::{Row, STOP, bw_row, lat_row, next, sample, take_buf};
use super::spec::Spec;
use super::{Res, err};

/// Server of the ping-pong: answers every `size`-octet Send with one until a Send
/// starts with [`STOP`].
pub fn lat_server(s: &Spec, conn: Connection, _: &dyn Swap) -> Res<u64> {
    let (spin, size) = (s.cfg.spin, s.size);
    conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
    let mut sbuf = vec![0u8; size];
    loop {
        let buf = take_buf(next(conn.recv_cq(), &conn, spin, "server recv")?, "recv")?;
        if buf.first() == Some(&STOP) {
            return Ok(0);
        }
        conn.post_recv(0, buf).map_err(err("post_recv"))?;
        conn.post_send(1, sbuf, Default::default())
            .map_err(err("post_send"))?;
        sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server send")?, "send")?;
    }
}

/// Client of the ping-pong of `size`-octet Sends for `cap` (at most `max` samples).
pub fn lat_client(s: &Spec, cap: Duration, conn: Connection, _: &dyn Swap) -> Res<Row> {
    let (cfg, size, spin) = (s.cfg, s.size, s.cfg.spin);
    conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
    let mut sbuf = Some(vec![0x5au8; size]);
    let (samples, trips) = sample(cap, s.max, 2.0, || {
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
    let mut last = sbuf.take().expect("send buffer");
    last[0] = STOP;
    conn.post_send(1, last, Default::default())
        .map_err(err("post_send"))?;
    next(conn.send_cq(), &conn, spin, "client send")?;
    Ok(lat_row(cfg.transport(), "send", size, samples).with_trips(trips))
}

/// Server of the bandwidth test: receives Sends until a 0-octet one, acknowledges
/// it and gives the number received.
pub fn bw_server(s: &Spec, conn: Connection, _: &dyn Swap) -> Res<u64> {
    let spin = s.cfg.spin;
    for _ in 0..2 * s.window {
        conn.post_recv(0, vec![0; s.size])
            .map_err(err("post_recv"))?;
    }
    let mut n = 0u64;
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
}

/// Client of the bandwidth test: windowed Sends of `size` octets (`window` in
/// flight) for `cap` (at most `max`), then a 0-octet Send and the server's answer.
pub fn bw_client(s: &Spec, cap: Duration, conn: Connection, _: &dyn Swap) -> Res<Row> {
    let spin = s.cfg.spin;
    conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
    let t = Instant::now();
    let msgs = windowed(&conn, s, s.size, s.window, cap, t, |i, buf| {
        conn.post_send(i, buf, Default::default())
            .map_err(err("post_send"))
    })?;
    send_empty(&conn, spin, "client end")?;
    await_done(&conn, spin)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(bw_row(s.cfg.transport(), "send", s.size, msgs, secs))
}

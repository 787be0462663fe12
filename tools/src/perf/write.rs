//! RDMA Write: ping-pong latency (arrival detected by polling the last octet, or a
//! 0-octet Send after each Write) and windowed bandwidth.

use std::time::{Duration, Instant};

use eta_engine::{Access, Connection, RemoteRegion};

use super::eta::{Swap, await_done, register_and_swap, send_empty, serve_region, windowed};
use super::measure::{
    Row, STOP_MARK, bw_row, lat_row, next, poll_octet, round_mark, sample, take_buf,
};
use super::spec::Spec;
use super::{Res, err};

/// Server of the polled ping-pong: waits for each round's mark in the last octet of
/// its region and writes it back, until the mark is [`STOP_MARK`].
pub fn lat_poll_server(s: &Spec, conn: Connection, x: &dyn Swap) -> Res<u64> {
    let (size, spin) = (s.size, s.cfg.spin);
    let last = size as u64 - 1;
    let (region, peer) = register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE, x)?;
    let mut sbuf = vec![0u8; size];
    let mut i = 0u64;
    loop {
        let v = round_mark(i);
        if poll_octet(&region, &conn, last, v)? == STOP_MARK {
            return Ok(0);
        }
        sbuf[size - 1] = v;
        conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
        sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
        i += 1;
    }
}

/// Client of the Write ping-pong with arrival detected by polling the last octet of
/// the own region, for `cap` (at most `max` samples).
pub fn lat_poll_client(s: &Spec, cap: Duration, conn: Connection, x: &dyn Swap) -> Res<Row> {
    let (size, spin) = (s.size, s.cfg.spin);
    let last = size as u64 - 1;
    let (region, peer) = register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE, x)?;
    let mut sbuf = Some(vec![0x5au8; size]);
    let mut i = 0u64;
    let (samples, trips) = sample(cap, s.max, 2.0, || {
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
    let mut buf = sbuf.take().expect("write buffer");
    buf[size - 1] = STOP_MARK;
    conn.post_write(1, buf, peer).map_err(err("post_write"))?;
    next(conn.send_cq(), &conn, spin, "client write")?;
    Ok(lat_row(s.cfg.transport(), "write", size, samples).with_trips(trips))
}

/// Server of the Write + Send ping-pong: answers each 0-octet notification with a
/// Write and one of its own, until a 1-octet notification (the client's stop).
pub fn lat_send_server(s: &Spec, conn: Connection, x: &dyn Swap) -> Res<u64> {
    let (size, spin) = (s.size, s.cfg.spin);
    let (_region, peer) = register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE, x)?;
    conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
    let mut sbuf = vec![0u8; size];
    loop {
        let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
        if c.byte_len != 0 {
            return Ok(0);
        }
        conn.post_recv(0, take_buf(c, "recv")?)
            .map_err(err("post_recv"))?;
        conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
        conn.post_send(2, Vec::new(), Default::default())
            .map_err(err("post_send"))?;
        sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
        next(conn.send_cq(), &conn, spin, "server send")?;
    }
}

/// Client of the Write ping-pong with a 0-octet Send after each Write as the
/// notification, for `cap` (at most `max` samples).
pub fn lat_send_client(s: &Spec, cap: Duration, conn: Connection, x: &dyn Swap) -> Res<Row> {
    let (size, spin) = (s.size, s.cfg.spin);
    let (_region, peer) = register_and_swap(&conn, vec![0; size], Access::REMOTE_WRITE, x)?;
    conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
    let mut sbuf = Some(vec![0x5au8; size]);
    let (samples, trips) = sample(cap, s.max, 2.0, || {
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
    // The stop: a 1-octet notification.
    conn.post_send(3, vec![0], Default::default())
        .map_err(err("post_send"))?;
    next(conn.send_cq(), &conn, spin, "client stop")?;
    Ok(lat_row(s.cfg.transport(), "write+send", size, samples).with_trips(trips))
}

/// Server of the bandwidth test: advertises a writable region, waits for the
/// client's "done" and acknowledges it.
pub fn bw_server(s: &Spec, conn: Connection, x: &dyn Swap) -> Res<u64> {
    serve_region(&conn, vec![0; s.size], Access::REMOTE_WRITE, s.cfg.spin, x)?;
    send_empty(&conn, s.cfg.spin, "server ack")?;
    Ok(0)
}

/// Client of the bandwidth test: windowed Writes of `size` octets (`window` in
/// flight) for `cap` (at most `max`); a 0-octet Send after the last marks the end.
pub fn bw_client(s: &Spec, cap: Duration, conn: Connection, x: &dyn Swap) -> Res<Row> {
    let spin = s.cfg.spin;
    conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
    let peer = x.swap(RemoteRegion {
        stag: eta_engine::Stag(0),
        to: 0,
    })?;
    let t = Instant::now();
    let msgs = windowed(&conn, s, s.size, s.window, cap, t, |i, buf| {
        conn.post_write(i, buf, peer).map_err(err("post_write"))
    })?;
    // The Send follows the Writes on the wire: its arrival means all placed.
    send_empty(&conn, spin, "client end")?;
    await_done(&conn, spin)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(bw_row(s.cfg.transport(), "write", s.size, msgs, secs))
}

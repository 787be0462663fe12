//! RDMA Read: post→completion latency of one Read (a full round trip) and windowed
//! bandwidth (the window also limited by the negotiated ORD).

use std::time::{Duration, Instant};

use eta_engine::{Access, Connection};

use super::eta::{Swap, register_and_swap, send_empty, serve_region, windowed};
use super::measure::{Row, bw_row, lat_row, next, sample};
use super::spec::Spec;
use super::{Res, err};

/// Server of both Read tests: advertises a readable region of `size` octets and
/// waits for the client's "done".
pub fn server(s: &Spec, conn: Connection, x: &dyn Swap) -> Res<u64> {
    serve_region(
        &conn,
        vec![0x5a; s.size],
        Access::REMOTE_READ,
        s.cfg.spin,
        x,
    )?;
    Ok(0)
}

/// Client of the latency test: Reads of `size` octets one at a time for `cap` (at
/// most `max` samples).
pub fn lat_client(s: &Spec, cap: Duration, conn: Connection, x: &dyn Swap) -> Res<Row> {
    let (size, spin) = (s.size, s.cfg.spin);
    let (local, peer) = register_and_swap(&conn, vec![0; size], Access::LOCAL_WRITE, x)?;
    let (samples, trips) = sample(cap, s.max, 1.0, || {
        let t = Instant::now();
        conn.post_read(1, &local, 0, size as u32, peer)
            .map_err(err("post_read"))?;
        next(conn.send_cq(), &conn, spin, "read")?;
        Ok(t.elapsed())
    })?;
    send_empty(&conn, spin, "done send")?;
    Ok(lat_row(s.cfg.transport(), "read", size, samples).with_trips(trips))
}

/// Client of the bandwidth test: windowed Reads of `size` octets (`window` in
/// flight, at most the ORD) for `cap` (at most `max`).
pub fn bw_client(s: &Spec, cap: Duration, conn: Connection, x: &dyn Swap) -> Res<Row> {
    let size = s.size;
    let window = s.window.min(usize::from(conn.negotiated().ord).max(1));
    let (local, peer) = register_and_swap(&conn, vec![0; size * window], Access::LOCAL_WRITE, x)?;
    let t = Instant::now();
    let msgs = windowed(&conn, s, 0, window, cap, t, |i, _| {
        let slot = (i % window as u64) * size as u64;
        conn.post_read(i, &local, slot, size as u32, peer)
            .map_err(err("post_read"))
    })?;
    let secs = t.elapsed().as_secs_f64();
    send_empty(&conn, s.cfg.spin, "done send")?;
    Ok(bw_row(s.cfg.transport(), "read", size, msgs, secs))
}

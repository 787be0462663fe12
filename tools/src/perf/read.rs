//! RDMA Read: post→completion latency of one Read (a full round trip) and windowed
//! bandwidth (the window also limited by the negotiated ORD).

use std::time::{Duration, Instant};

use eta_engine::Access;

use super::eta::{EtaCfg, exchange_pair, pair, send_empty, windowed};
use super::measure::{Row, bw_row, lat_row, next, sample};
use super::{Res, err};

/// Reads of `size` octets one at a time for `cap` (at most `max` samples).
pub fn lat(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, samples) = pair(
        cfg,
        move |conn| srv_x.serve_region(&conn, vec![0x5a; size], Access::REMOTE_READ, spin),
        |conn| {
            let (local, peer) =
                cli_x.register_and_swap(&conn, vec![0; size], Access::LOCAL_WRITE)?;
            let samples = sample(cap, max, 1.0, || {
                let t = Instant::now();
                conn.post_read(1, &local, 0, size as u32, peer)
                    .map_err(err("post_read"))?;
                next(conn.send_cq(), &conn, spin, "read")?;
                Ok(t.elapsed())
            })?;
            send_empty(&conn, spin, "done send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "read", size, samples))
}

/// Windowed Reads of `size` octets (`window` in flight, at most the ORD) for `cap`
/// (at most `max`).
pub fn bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, (msgs, secs)) = pair(
        cfg,
        move |conn| srv_x.serve_region(&conn, vec![0x5a; size], Access::REMOTE_READ, spin),
        |conn| {
            let window = window.min(usize::from(conn.negotiated().ord).max(1));
            let (local, peer) =
                cli_x.register_and_swap(&conn, vec![0; size * window], Access::LOCAL_WRITE)?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, 0, window, cap, max, t, |i, _| {
                let slot = (i % window as u64) * size as u64;
                conn.post_read(i, &local, slot, size as u32, peer)
                    .map_err(err("post_read"))
            })?;
            let secs = t.elapsed().as_secs_f64();
            send_empty(&conn, spin, "done send")?;
            Ok((msgs, secs))
        },
    )?;
    Ok(bw_row(cfg.transport(), "read", size, msgs, secs))
}

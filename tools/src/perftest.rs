//! perftest's out-of-band exchange with `-R` (rdma_cm), as `eta-perftest` speaks it
//! (perftest 4.5-0.17, `src/perftest_communication.c`, Debian's package 4.5+0.17).
//!
//! With `-R`, perftest first opens a *control connection* (an rdma_cm RC connection
//! on the test port, one 56-octet receive posted on each side) and runs every
//! exchange over it as one Send each way, in lock step: the client Sends and then
//! receives, the server receives and then Sends, and each side reposts its receive
//! after reading. The exchanges of `ib_write_bw -R` / `ib_read_bw -R` (one QP, not
//! duplex), in order:
//!
//! 1. versions: 16 octets, the NUL-padded version string (`char version[16]`);
//!    the peer refuses versions below 5.70;
//! 2. `cycle_buffer` and 3. `cache_line_size`: 4 octets each, big-endian; both
//!    sides use the larger;
//! 4. MTU: 2 octets, `sprintf("%d", enum ibv_mtu)` (the short form of versions
//!    ≥ 5.31);
//! 5. a [`PingpongDest`] handshake (all zero), then the *test connection*: a second
//!    rdma_cm connection to the same port (the server listens again), then another
//!    zero handshake;
//! 6. three handshakes of the real [`PingpongDest`]: the test buffer's rkey and
//!    address (the third is "after moving the QP to RTR");
//! 7. the client runs the test on the test connection (RDMA Writes into the
//!    server's buffer, or RDMA Reads from it) while the server waits in the next
//!    handshake;
//! 8. a handshake, the client's [`BwReport`] (five 8-octet exchanges), and a last
//!    handshake (`ctx_close_connection`); then both disconnect.
//!
//! `ib_send_bw -R` differs after step 6: the server posts its receives and the
//! client prepares its Sends, a fourth handshake, then the test (both measure and
//! report on their own: no report exchange), and the closing handshake. Over iWARP
//! the Sends are flow-controlled by credits (`send_rcredit`): the
//! [`PingpongDest`] each side sends names a 4-octet *credit buffer* instead of the
//! test buffer, and the receiver RDMA-Writes its count of receives there (a
//! host-order, so little-endian, `uint32_t`) every [`credit_every`] receives; the
//! sender keeps fewer than [`rx_depth`] Sends beyond the last count it was given.

use crate::endpoint::Res;

/// The version string this implementation speaks (perftest 4.5-0.17's `VERSION`).
pub const VERSION: &str = "6.06";
/// `MAX_VERSION`: the octets of a version exchange.
pub const VERSION_LEN: usize = 16;
/// Versions below this are refused (`check_version_compatibility`).
pub const MIN_PEER_VERSION: f64 = 5.70;
/// `sizeof(struct pingpong_dest)` on x86-64.
pub const DEST_LEN: usize = 56;
/// The control connection's receive size (`sizeof(struct pingpong_dest)`).
pub const CTRL_RECV_LEN: usize = DEST_LEN;
/// `enum ibv_mtu` of 1024 octets, what siw reports for a 1500-octet Ethernet MTU.
pub const MTU_1024: u8 = 3;
/// `sysconf(_SC_PAGESIZE)` on x86-64: perftest's default `cycle_buffer`.
pub const PAGE_SIZE: u32 = 4096;
/// The x86-64 cache line size perftest reads from sysfs.
pub const CACHE_LINE: u32 = 64;

/// perftest's receive depth for `ib_send_bw` with `iters` iterations: 512, at
/// most `iters`, made even. Both sides compute it; it is not exchanged.
pub fn rx_depth(iters: u64) -> u64 {
    let d = iters.clamp(1, 512);
    d + d % 2
}

/// How many receives pass between two credit Writes (`rx_depth / 3`).
pub fn credit_every(rx_depth: u64) -> u64 {
    (rx_depth / 3).max(1)
}

/// Whether the receiver Writes a credit after its `received`-th receive
/// (`run_iter_bw_server`: `(rcnt % rx_depth) % credit_cnt == 0`).
pub fn credit_due(received: u64, rx_depth: u64) -> bool {
    (received % rx_depth) % credit_every(rx_depth) == 0
}

/// The version exchange's 16 octets.
pub fn version_octets() -> Vec<u8> {
    let mut v = vec![0u8; VERSION_LEN];
    v[..VERSION.len()].copy_from_slice(VERSION.as_bytes());
    v
}

/// The peer's version string from its 16 octets, checked as perftest checks it.
pub fn parse_version(b: &[u8]) -> Res<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).into_owned();
    let v: f64 = atof(&s);
    if v < MIN_PEER_VERSION {
        return Err(format!(
            "peer perftest version {s:?} is older than {MIN_PEER_VERSION} (not compatible)"
        ));
    }
    Ok(s)
}

/// C's `atof` on a version string: the longest numeric prefix, 0 if none.
fn atof(s: &str) -> f64 {
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (c == '.' && !s[..i].contains('.'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().unwrap_or(0.0)
}

/// The MTU exchange's 2 octets: the enum value as a decimal digit and a NUL.
pub fn mtu_octets(mtu: u8) -> Vec<u8> {
    let mut v = format!("{mtu}").into_bytes();
    v.resize(2, 0);
    v.truncate(2);
    v
}

/// `struct pingpong_dest` as perftest sends it over the control connection
/// (`rdma_write_keys` with `HAVE_ENDIAN`: every integer big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PingpongDest {
    /// `lid` (0 for iWARP).
    pub lid: u32,
    /// `out_reads`: the RDMA Read depth this side offers.
    pub out_reads: u32,
    /// `qpn`.
    pub qpn: u32,
    /// `psn`.
    pub psn: u32,
    /// `rkey` of the test buffer.
    pub rkey: u32,
    /// `vaddr` of the test buffer: the tagged offset to use with `rkey`.
    pub vaddr: u64,
    /// `gid` (16 octets, copied raw).
    pub gid: [u8; 16],
    /// `srqn`.
    pub srqn: u32,
    /// `gid_index`.
    pub gid_index: u32,
}

impl PingpongDest {
    /// The 56 octets on the wire (octets 20..24 are the C struct's padding).
    pub fn emit(&self) -> Vec<u8> {
        let mut b = vec![0u8; DEST_LEN];
        b[0..4].copy_from_slice(&self.lid.to_be_bytes());
        b[4..8].copy_from_slice(&self.out_reads.to_be_bytes());
        b[8..12].copy_from_slice(&self.qpn.to_be_bytes());
        b[12..16].copy_from_slice(&self.psn.to_be_bytes());
        b[16..20].copy_from_slice(&self.rkey.to_be_bytes());
        b[24..32].copy_from_slice(&self.vaddr.to_be_bytes());
        b[32..48].copy_from_slice(&self.gid);
        b[48..52].copy_from_slice(&self.srqn.to_be_bytes());
        b[52..56].copy_from_slice(&self.gid_index.to_be_bytes());
        b
    }

    /// Parses the 56 octets (`rdma_read_keys`).
    pub fn parse(b: &[u8]) -> Res<Self> {
        if b.len() != DEST_LEN {
            return Err(format!(
                "pingpong_dest of {} octets, expected {DEST_LEN}",
                b.len()
            ));
        }
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 octets"));
        Ok(Self {
            lid: u32_at(0),
            out_reads: u32_at(4),
            qpn: u32_at(8),
            psn: u32_at(12),
            rkey: u32_at(16),
            vaddr: u64::from_be_bytes(b[24..32].try_into().expect("8 octets")),
            gid: b[32..48].try_into().expect("16 octets"),
            srqn: u32_at(48),
            gid_index: u32_at(52),
        })
    }
}

/// The fields of `struct bw_report_data` that `xchg_bw_reports` exchanges, in its
/// order, each as 8 big-endian octets (`hton_long`, `hton_double`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BwReport {
    /// Message size in octets.
    pub size: u64,
    /// Iterations.
    pub iters: u64,
    /// Peak bandwidth, MB/s (2^20 octets per second).
    pub bw_peak: f64,
    /// Average bandwidth, MB/s.
    pub bw_avg: f64,
    /// Message rate, millions per second.
    pub msg_rate: f64,
}

impl BwReport {
    /// The five 8-octet exchanges, in order.
    pub fn emit(&self) -> [[u8; 8]; 5] {
        [
            self.size.to_be_bytes(),
            self.iters.to_be_bytes(),
            self.bw_peak.to_bits().to_be_bytes(),
            self.bw_avg.to_bits().to_be_bytes(),
            self.msg_rate.to_bits().to_be_bytes(),
        ]
    }

    /// The report from the five exchanges' octets.
    pub fn parse(parts: &[Vec<u8>]) -> Res<Self> {
        let f = |i: usize| -> Res<[u8; 8]> {
            parts
                .get(i)
                .and_then(|p| <[u8; 8]>::try_from(p.as_slice()).ok())
                .ok_or_else(|| format!("report field {i} is not 8 octets"))
        };
        Ok(Self {
            size: u64::from_be_bytes(f(0)?),
            iters: u64::from_be_bytes(f(1)?),
            bw_peak: f64::from_bits(u64::from_be_bytes(f(2)?)),
            bw_avg: f64::from_bits(u64::from_be_bytes(f(3)?)),
            msg_rate: f64::from_bits(u64::from_be_bytes(f(4)?)),
        })
    }

    /// The report of `iters` messages of `size` octets moved in `secs` seconds.
    pub fn measured(size: u64, iters: u64, secs: f64) -> Self {
        let secs = secs.max(1e-9);
        let bw = (size * iters) as f64 / secs / f64::from(1u32 << 20);
        Self {
            size,
            iters,
            bw_peak: bw,
            bw_avg: bw,
            msg_rate: iters as f64 / secs / 1e6,
        }
    }

    /// perftest's result line (`REPORT_FMT`).
    pub fn line(&self) -> String {
        format!(
            " {:<7}    {:<10}       {:<7.2}            {:<7.2}\t\t   {:<7.6}",
            self.size, self.iters, self.bw_peak, self.bw_avg, self.msg_rate
        )
    }
}

/// perftest's result header (`RESULT_FMT`).
pub const REPORT_HEADER: &str =
    " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_round_trip_and_check() {
        let v = version_octets();
        assert_eq!(v.len(), 16);
        assert_eq!(&v[..5], b"6.06\0");
        assert_eq!(parse_version(&v).unwrap(), "6.06");
        assert!(parse_version(b"5.60\0").is_err());
        assert_eq!(atof("6.10.1"), 6.10);
        assert_eq!(atof("x"), 0.0);
    }

    #[test]
    fn mtu_is_two_octets() {
        assert_eq!(mtu_octets(3), b"3\0");
        assert_eq!(mtu_octets(5), b"5\0");
    }

    #[test]
    fn dest_layout() {
        let d = PingpongDest {
            out_reads: 16,
            qpn: 0x11,
            psn: 0x22,
            rkey: 0xabcd_0001,
            vaddr: 0x1122_3344_5566_7788,
            ..Default::default()
        };
        let b = d.emit();
        assert_eq!(&b[4..8], &[0, 0, 0, 16]);
        assert_eq!(&b[16..20], &[0xab, 0xcd, 0, 1]);
        assert_eq!(&b[20..24], &[0; 4]);
        assert_eq!(
            &b[24..32],
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(PingpongDest::parse(&b).unwrap(), d);
        assert!(PingpongDest::parse(&b[..55]).is_err());
    }

    #[test]
    fn send_credits_follow_perftest() {
        assert_eq!(rx_depth(5000), 512);
        assert_eq!(rx_depth(100), 100);
        assert_eq!(rx_depth(99), 100);
        assert_eq!(credit_every(100), 33);
        let due: Vec<u64> = (1..=100).filter(|&n| credit_due(n, 100)).collect();
        assert_eq!(due, [33, 66, 99, 100]);
    }

    #[test]
    fn report_round_trip() {
        let r = BwReport::measured(65536, 200, 0.5);
        assert_eq!(r.bw_avg, 25.0);
        let parts: Vec<Vec<u8>> = r.emit().iter().map(|p| p.to_vec()).collect();
        assert_eq!(parts[0], 65536u64.to_be_bytes());
        assert_eq!(BwReport::parse(&parts).unwrap(), r);
        assert!(r.line().starts_with(" 65536      200 "));
    }
}

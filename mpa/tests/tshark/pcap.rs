//! A tiny synthetic TCP conversation and a classic pcap writer for the Wireshark
//! cross-check (`tests/tshark/`): Ethernet II / IPv4 / TCP with correct IPv4 header
//! and TCP (pseudo-header) checksums, consistent sequence numbers and ACKs.
//!
//! The conversation is kept as a list of logical segments so that a test can alter
//! payload octets (same length) and write the capture again with fresh checksums.

/// Which end sends a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The MPA Initiator (TCP active opener), 127.0.0.1:40000.
    Initiator,
    /// The MPA Responder (TCP passive opener), 127.0.0.1:4791.
    Responder,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::Initiator => 0,
            Dir::Responder => 1,
        }
    }

    fn peer(self) -> Dir {
        match self {
            Dir::Initiator => Dir::Responder,
            Dir::Responder => Dir::Initiator,
        }
    }
}

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// TCP ports of the two ends (no Wireshark dissector is registered on either).
const PORTS: [u16; 2] = [40000, 4791];
const ADDRS: [[u8; 4]; 2] = [[127, 0, 0, 1], [127, 0, 0, 1]];
const MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
const ISN: [u32; 2] = [0x1000_0000, 0x2000_0000];

/// One TCP segment of the conversation.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Sender.
    pub dir: Dir,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number of the first octet (or of the SYN/FIN).
    pub seq: u32,
    /// Acknowledgement number (meaningful with ACK).
    pub ack: u32,
    /// TCP payload.
    pub payload: Vec<u8>,
}

/// A TCP connection between the two ends, built segment by segment.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Every segment in capture order; frame number = index + 1.
    pub segments: Vec<Segment>,
    /// Next sequence number each end sends.
    nxt: [u32; 2],
}

impl Conversation {
    /// A connection after the three-way handshake (SYN, SYN-ACK, ACK).
    pub fn open() -> Self {
        let mut c = Self {
            segments: Vec::new(),
            nxt: ISN,
        };
        c.push(Dir::Initiator, SYN, Vec::new());
        c.push(Dir::Responder, SYN | ACK, Vec::new());
        c.push(Dir::Initiator, ACK, Vec::new());
        c
    }

    /// Next sequence number `dir` will send.
    pub fn next_seq(&self, dir: Dir) -> u32 {
        self.nxt[dir.index()]
    }

    fn push(&mut self, dir: Dir, flags: u8, payload: Vec<u8>) -> usize {
        let i = dir.index();
        let seq = self.nxt[i];
        let ack = if flags & ACK != 0 {
            self.nxt[dir.peer().index()]
        } else {
            0
        };
        let mut advance = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            advance += 1;
        }
        self.nxt[i] = seq.wrapping_add(advance);
        self.segments.push(Segment {
            dir,
            flags,
            seq,
            ack,
            payload,
        });
        self.segments.len() - 1
    }

    /// Sends `payload` from `dir` in one segment, which the peer acknowledges at
    /// once with a pure ACK. Returns the index of the data segment.
    pub fn send(&mut self, dir: Dir, payload: Vec<u8>) -> usize {
        assert!(!payload.is_empty());
        let i = self.push(dir, PSH | ACK, payload);
        self.push(dir.peer(), ACK, Vec::new());
        i
    }

    /// Closes the connection gracefully from `dir` (FIN, FIN-ACK, ACK).
    pub fn close(&mut self, dir: Dir) {
        self.push(dir, FIN | ACK, Vec::new());
        self.push(dir.peer(), FIN | ACK, Vec::new());
        self.push(dir, ACK, Vec::new());
    }

    /// The conversation as a classic pcap file (LINKTYPE_ETHERNET, microseconds).
    pub fn to_pcap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        for (n, seg) in self.segments.iter().enumerate() {
            let frame = ethernet_frame(seg, n as u16);
            let usec = 100 * n as u32;
            out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
            out.extend_from_slice(&usec.to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
        out
    }
}

/// The ones' complement sum of 16-bit big-endian words (odd tail padded with zero).
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn ethernet_frame(seg: &Segment, ip_id: u16) -> Vec<u8> {
    let (s, d) = (seg.dir.index(), seg.dir.peer().index());

    let mut tcp = Vec::with_capacity(20 + seg.payload.len());
    tcp.extend_from_slice(&PORTS[s].to_be_bytes());
    tcp.extend_from_slice(&PORTS[d].to_be_bytes());
    tcp.extend_from_slice(&seg.seq.to_be_bytes());
    tcp.extend_from_slice(&seg.ack.to_be_bytes());
    tcp.push(5 << 4); // data offset: 20 octets, no options
    tcp.push(seg.flags);
    tcp.extend_from_slice(&65_535u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0]); // checksum, filled below
    tcp.extend_from_slice(&[0, 0]); // urgent pointer
    tcp.extend_from_slice(&seg.payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&ADDRS[s]);
    pseudo.extend_from_slice(&ADDRS[d]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    let sum = fold(ones_sum(ones_sum(0, &pseudo), &tcp));
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut ip = Vec::with_capacity(20);
    ip.push(0x45); // IPv4, IHL 5
    ip.push(0); // DSCP/ECN
    ip.extend_from_slice(&(20 + tcp.len() as u16).to_be_bytes());
    ip.extend_from_slice(&ip_id.to_be_bytes());
    ip.extend_from_slice(&0x4000u16.to_be_bytes()); // DF
    ip.push(64); // TTL
    ip.push(6); // TCP
    ip.extend_from_slice(&[0, 0]); // checksum, filled below
    ip.extend_from_slice(&ADDRS[s]);
    ip.extend_from_slice(&ADDRS[d]);
    let sum = fold(ones_sum(0, &ip));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + ip.len() + tcp.len());
    frame.extend_from_slice(&MACS[d]);
    frame.extend_from_slice(&MACS[s]);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&tcp);
    frame
}

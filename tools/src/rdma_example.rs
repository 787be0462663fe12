//! The application protocol of rdma-core's `rdma_server` / `rdma_client` examples
//! (`librdmacm/examples/rdma_server.c`, `rdma_client.c`), shared by
//! `eta-rdma-server` and `eta-rdma-client`.
//!
//! Each side has one 16-octet send buffer and one 16-octet receive buffer, static
//! and never written, so every message is 16 zero octets. No private data
//! (`rdma_connect(id, NULL)`, `rdma_accept(id, NULL)`); the Sends use
//! `IBV_SEND_INLINE` when the device allows 16 octets inline (siw allows 80),
//! which does not show on the wire. The exchange:
//!
//! 1. server: post a receive, accept; client: post a receive, connect;
//! 2. client: Send its message, wait for the Send completion, then for the receive;
//! 3. server: wait for the receive, Send its answer, wait for the Send completion;
//! 4. both: disconnect.

use std::time::Duration;

use eta_engine::{Options, SendOptions};

use crate::args::parse_each;
use crate::endpoint::separate_cqs;

/// `sizeof send_msg` = `sizeof recv_msg` in both programs.
pub const MSG_LEN: usize = 16;

/// rdma_client's and rdma_server's default port (`"7471"`).
pub const DEFAULT_PORT: u16 = 7471;

/// The message both programs send: their untouched static buffer.
pub fn message() -> Vec<u8> {
    vec![0; MSG_LEN]
}

/// Checks a received message against what the peer program sends.
pub fn check(who: &str, got: &[u8]) -> Result<(), String> {
    if got.len() != MSG_LEN {
        return Err(format!(
            "{who} sent {} octets, rdma_{who} sends {MSG_LEN}",
            got.len()
        ));
    }
    if got.iter().any(|&b| b != 0) {
        return Err(format!(
            "{who} sent {got:02x?}, rdma_{who} sends {MSG_LEN} zero octets"
        ));
    }
    Ok(())
}

/// The command line both example tools take: `-s` address, `-p` port (as
/// rdma_server and rdma_client), `-t`, `-v`, `--solicited` and the MPA options.
#[derive(Debug)]
pub struct ExampleArgs {
    /// `-s`: the server's address (client) or the address to bind (server).
    pub host: String,
    /// `-p`.
    pub port: u16,
    /// `-t`: time-out of every wait.
    pub timeout: Duration,
    /// `-v`: print the peer's message.
    pub verbose: bool,
    /// `--solicited`: this side's Send carries the Solicited Event flag.
    pub solicited: bool,
    /// MPA options, and separate send and receive completion queues.
    pub opts: Options,
}

impl ExampleArgs {
    /// Parses the process's arguments; `flag` may claim further flags without a
    /// value (it answers whether it knew the flag).
    pub fn parse(default_host: &str, mut flag: impl FnMut(&str) -> bool) -> Result<Self, String> {
        let mut a = Self {
            host: default_host.into(),
            port: DEFAULT_PORT,
            timeout: Duration::from_secs(30),
            verbose: false,
            solicited: false,
            opts: Options::default(),
        };
        let mut opts = Options::default();
        parse_each(&mut opts, |arg, argv| {
            match arg {
                "-s" => a.host = argv.value("-s")?,
                "-p" => a.port = argv.number("-p")?,
                "-t" => a.timeout = argv.seconds("-t")?,
                "-v" => a.verbose = true,
                "--solicited" => a.solicited = true,
                other => return Ok(flag(other)),
            }
            Ok(true)
        })?;
        a.opts = opts;
        separate_cqs(&mut a.opts)?;
        Ok(a)
    }

    /// The options of this side's Send.
    pub fn send_opts(&self) -> SendOptions {
        SendOptions {
            solicited: self.solicited,
            invalidate: None,
        }
    }
}

/// Hex of a message, for the verbose line.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_and_content() {
        assert!(check("server", &message()).is_ok());
        assert!(check("server", &[0; 15]).unwrap_err().contains("15 octets"));
        let mut m = message();
        m[3] = 1;
        assert!(check("client", &m).unwrap_err().contains("zero octets"));
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}

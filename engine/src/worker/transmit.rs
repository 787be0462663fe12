//! The send side of the loop: segments from the core, framed into FPDUs, written
//! with `writev`; then our FIN when the connection closes.

use super::conn::Conn;
use super::rtr_hold::RtrHold;
use crate::sys;

impl Conn {
    /// Frames and writes what the core has to send, as far as the socket takes it;
    /// sends our FIN when it is due. Returns whether it made progress.
    pub fn transmit(&mut self) -> bool {
        if self.life.failed() && self.tx.is_empty() {
            return false;
        }
        let mut any = false;
        // The Responder sends nothing before it has received an FPDU (RFC 5044);
        // closing (below) does not wait for that.
        let may_send = (!self.responder || self.send_first || self.core.has_received_fpdu())
            && self.rtr_hold.released(self.fd);
        if may_send {
            loop {
                let max = self.rtr_hold.frame_limit(self.tx.framed);
                let framed = self.tx.fill(&mut self.core, &mut self.framer, max);
                if self.tx.is_empty() {
                    break;
                }
                match self.tx.flush(self.fd, &mut self.core) {
                    Ok(0) => break,
                    Ok(_) => any = true,
                    Err(e) => {
                        // The peer may have sent a Terminate and closed: its
                        // Terminate, still in our socket, says why (`salvage`).
                        self.write_broken = Some(e.kind());
                        return true;
                    }
                }
                if framed == 0 && !self.tx.is_empty() {
                    break;
                }
                if self.rtr_hold == RtrHold::Unsent {
                    self.rtr_hold
                        .on_written(self.tx.is_empty() && self.tx.acked > 0);
                    break;
                }
            }
        }
        if self.life.wants_fin() && self.tx.is_empty() && self.quiet() {
            sys::shutdown_write(self.fd);
            self.life = self.life.fin_written();
            self.shared.drained.set();
            any = true;
        }
        any
    }
}

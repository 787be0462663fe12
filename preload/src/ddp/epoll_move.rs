//! Moving a socket's epoll registrations across its switch to DDP mode.
//!
//! epoll keys a registration by (open file, fd number). When the shim puts the
//! engine's pollable fd in place of the TCP socket (`dup3` onto the same number),
//! a registration made before would keep watching the TCP socket, which the engine
//! now reads. So before the switch each registration of the fd is read from
//! `/proc/self/fdinfo/<epfd>` (the kernel lists `tfd`, `events` and `data` of every
//! registration there, with `EPOLLET`, `EPOLLONESHOT` and the disarmed state of a
//! fired one-shot in `events`), deleted, and added again with the same events and
//! data once the fd is switched. Only fds the program ever gave to `epoll_ctl`
//! are looked for (the fd table remembers), so a switch usually costs nothing.
//! Epoll sets of other processes (shared across `fork`) are not seen.

use std::fs;

use libc::{c_int, epoll_event};

use crate::fdtable;
use crate::real;

/// One registration: the epoll fd, the events mask and the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    epfd: c_int,
    events: u32,
    data: u64,
}

/// Parses one epoll fd's fdinfo text: the registrations of `fd`.
fn parse(epfd: c_int, fdinfo: &str, fd: c_int) -> Vec<Registration> {
    let mut out = Vec::new();
    for line in fdinfo.lines() {
        let mut it = line.split_whitespace();
        if it.next() != Some("tfd:") {
            continue;
        }
        let tfd = it.next().and_then(|v| v.parse::<c_int>().ok());
        let mut events = None;
        let mut data = None;
        while let Some(k) = it.next() {
            match k {
                "events:" => events = it.next().and_then(|v| u32::from_str_radix(v, 16).ok()),
                "data:" => data = it.next().and_then(|v| u64::from_str_radix(v, 16).ok()),
                _ => {}
            }
        }
        if let (Some(t), Some(events), Some(data)) = (tfd, events, data)
            && t == fd
        {
            out.push(Registration { epfd, events, data });
        }
    }
    out
}

/// Finds and deletes every registration of `fd` in this process's epoll sets.
pub fn take_registrations(fd: c_int) -> Vec<Registration> {
    if !fdtable::epolled(fd) {
        return Vec::new();
    }
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc/self/fd") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(epfd) = e.file_name().to_str().and_then(|n| n.parse::<c_int>().ok()) else {
            continue;
        };
        let is_epoll = fs::read_link(e.path())
            .map(|t| t.as_os_str() == "anon_inode:[eventpoll]")
            .unwrap_or(false);
        if !is_epoll {
            continue;
        }
        if let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")) {
            found.extend(parse(epfd, &info, fd));
        }
    }
    for r in &found {
        let mut ev = epoll_event { events: 0, u64: 0 };
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer (valid anyway, for old
        // kernels that require one).
        unsafe { real::epoll_ctl(r.epfd, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }
    found
}

/// Adds the registrations back for the (switched) `fd`.
pub fn restore(fd: c_int, regs: &[Registration]) {
    for r in regs {
        let mut ev = epoll_event {
            events: r.events,
            u64: r.data,
        };
        // SAFETY: a valid epoll_event for the duration of the call.
        let rc = unsafe { real::epoll_ctl(r.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc != 0 {
            crate::log::error!(
                "could not move fd {fd}'s epoll registration to its DDP fd (epoll fd {}): errno {}",
                r.epfd,
                crate::errno::get()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Registration, parse};

    #[test]
    fn parses_the_kernels_format() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n\
                    tfd:        5 events: 80000019 data:       deadbeef12  pos:0 ino:5f3 sdev:8\n\
                    tfd:        7 events:       19 data:                7  pos:0 ino:5f4 sdev:8\n";
        assert_eq!(
            parse(3, info, 5),
            vec![Registration {
                epfd: 3,
                events: 0x8000_0019,
                data: 0xdead_beef12
            }]
        );
        assert_eq!(parse(3, info, 7)[0].data, 7);
        assert!(parse(3, info, 6).is_empty());
    }
}

//! Command-line parsing shared by the tools: an argv cursor with typed values, the
//! MPA options every interop tool accepts, and the help and exit-status handling.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use eta_engine::Options;

/// The MPA options every interop tool accepts, for its help text.
pub const MPA_HELP: &str = "\
MPA options (default: Rev 2, CRC on, peer-to-peer with Write/Read RTR, IRD=ORD=16):
  --no-crc         do not ask for CRC
  --rev1           speak MPA Rev 1 (RFC 5044, no IRD/ORD, no RTR)
  --markers        ask the peer for MPA markers (siw refuses them)
  --no-p2p         client: do not request the peer-to-peer model (no RTR)
  --send-first     server: send before the client's first message arrives (waives
                   RFC 5044's Responder rule, for siw clients whose server speaks first)
  --rtr KINDS      RTR messages to offer (client) or accept (server): a comma list
                   of write, read, send (default write,read)
  --ird N / --ord N  inbound / outbound RDMA Read depth (default 16)";

/// The remaining command-line arguments, consumed one at a time.
#[derive(Debug)]
pub struct Argv {
    rest: std::vec::IntoIter<String>,
}

impl Argv {
    /// The process's arguments without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1).collect())
    }

    /// Arguments from a list (for tests).
    pub fn new(args: Vec<String>) -> Self {
        Self {
            rest: args.into_iter(),
        }
    }

    /// The next value of `flag`, which takes one.
    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        self.rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))
    }

    /// The next value of `flag`, parsed as a number.
    pub fn number<T: FromStr>(&mut self, flag: &str) -> Result<T, String> {
        let v = self.value(flag)?;
        v.trim()
            .parse()
            .map_err(|_| format!("{flag}: bad number {v:?}"))
    }

    /// The next value of `flag`, as whole seconds (at least one).
    pub fn seconds(&mut self, flag: &str) -> Result<Duration, String> {
        let secs: u64 = self.number(flag)?;
        Ok(Duration::from_secs(secs.max(1)))
    }

    /// The next value of `flag`, a number above zero.
    pub fn positive<T: FromStr + PartialOrd + Default>(&mut self, flag: &str) -> Result<T, String> {
        let v = self.value(flag)?;
        v.trim()
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| format!("{flag}: expected a positive number, got {v:?}"))
    }

    /// The next value of `flag`, which must be one of the names in `choices`; gives
    /// the value paired with it.
    pub fn choice<T: Clone>(&mut self, flag: &str, choices: &[(&str, T)]) -> Result<T, String> {
        let v = self.value(flag)?;
        if let Some((_, t)) = choices.iter().find(|(name, _)| *name == v) {
            return Ok(t.clone());
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let expected = match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::from("nothing"),
        };
        Err(format!("{flag}: expected {expected}, got {v:?}"))
    }

    /// The next value of `flag`, a comma-separated list, each item (trimmed) parsed
    /// by `item`.
    pub fn list<T>(
        &mut self,
        flag: &str,
        item: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.value(flag)?
            .split(',')
            .map(str::trim)
            .map(item)
            .collect()
    }
}

impl Iterator for Argv {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.rest.next()
    }
}

/// Walks the process's arguments: `-h`/`--help` ends with `Err("")` (see
/// [`parse_or_exit`]), the MPA options of [`MPA_HELP`] go to `opts`, and every other
/// argument to `tool_option`, which takes its value from the [`Argv`] and answers
/// whether it knew the argument; an unknown one is an error.
pub fn parse_each(
    opts: &mut Options,
    tool_option: impl FnMut(&str, &mut Argv) -> Result<bool, String>,
) -> Result<(), String> {
    parse_list(Argv::from_env(), opts, tool_option)
}

fn parse_list(
    argv: Argv,
    opts: &mut Options,
    mut tool_option: impl FnMut(&str, &mut Argv) -> Result<bool, String>,
) -> Result<(), String> {
    parse_plain(argv, |arg, argv| {
        Ok(mpa_option(arg, argv, opts)? || tool_option(arg, argv)?)
    })
}

/// Walks `argv` for a tool without the MPA options: `-h`/`--help` ends with
/// `Err("")`; every other argument goes to `option`, which takes its value from the
/// [`Argv`] and answers whether it knew the argument; an unknown one is an error.
pub fn parse_plain(
    mut argv: Argv,
    mut option: impl FnMut(&str, &mut Argv) -> Result<bool, String>,
) -> Result<(), String> {
    while let Some(arg) = argv.next() {
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        if !option(&arg, &mut argv)? {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    Ok(())
}

/// Applies `arg` to `opts` if it is one of the MPA options of [`MPA_HELP`] (taking
/// its value from `argv`). Returns whether it was one.
pub fn mpa_option(arg: &str, argv: &mut Argv, opts: &mut Options) -> Result<bool, String> {
    match arg {
        "--no-crc" => opts.mpa.crc = false,
        "--rev1" => {
            opts.mpa.revision = 1;
            opts.mpa.peer_to_peer = false;
        }
        "--markers" => opts.mpa.want_markers = true,
        "--no-p2p" => opts.mpa.peer_to_peer = false,
        "--send-first" => opts.responder_sends_first = true,
        "--rtr" => {
            let kinds = argv.value("--rtr")?;
            let mut rtr = eta_engine::RtrTypes {
                send: false,
                write: false,
                read: false,
            };
            for k in kinds.split(',') {
                match k.trim() {
                    "write" => rtr.write = true,
                    "read" => rtr.read = true,
                    "send" => rtr.send = true,
                    other => return Err(format!("--rtr: unknown RTR kind {other:?}")),
                }
            }
            opts.mpa.rtr = rtr;
        }
        "--ird" => opts.mpa.ird = argv.number("--ird")?,
        "--ord" => opts.mpa.ord = argv.number("--ord")?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Runs a tool's argument parser, which answers `Err("")` for `-h`/`--help`. On
/// help, prints `help` and [`MPA_HELP`] and gives exit status 0; on a bad argument,
/// prints the message and the help on stderr and gives exit status 2.
pub fn parse_or_exit<T>(
    tool: &str,
    help: &str,
    parse: impl FnOnce() -> Result<T, String>,
) -> Result<T, ExitCode> {
    match parse() {
        Ok(a) => Ok(a),
        Err(m) if m.is_empty() => {
            println!("{help}{MPA_HELP}");
            Err(ExitCode::SUCCESS)
        }
        Err(m) => {
            eprintln!("{tool}: {m}\n\n{help}{MPA_HELP}");
            Err(ExitCode::from(2))
        }
    }
}

/// Exit status 0 for success; for a failure, prints `<tool>: <role> failed: <why>`
/// on stderr and gives 1.
pub fn exit_status(tool: &str, role: &str, res: Result<(), String>) -> u8 {
    match res {
        Ok(()) => 0,
        Err(m) => {
            eprintln!("{tool}: {role} failed: {m}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Argv {
        Argv::new(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn values_and_numbers() {
        let mut a = argv(&["-p", "7", "x", "0"]);
        assert_eq!(a.next().as_deref(), Some("-p"));
        assert_eq!(a.number::<u16>("-p"), Ok(7));
        assert!(a.number::<u16>("-C").unwrap_err().contains("bad number"));
        assert_eq!(a.seconds("-t"), Ok(Duration::from_secs(1)));
        assert!(a.value("-a").unwrap_err().contains("needs a value"));
    }

    #[test]
    fn positive_choice_and_list() {
        let mut a = argv(&["0", "3", "send", "x", "1, 2,3", "1,y"]);
        assert!(a.positive::<usize>("-n").unwrap_err().contains("positive"));
        assert_eq!(a.positive::<usize>("-n"), Ok(3));
        let modes = [("poll", 0), ("send", 1), ("both", 2)];
        assert_eq!(a.choice("--m", &modes), Ok(1));
        assert_eq!(
            a.choice("--m", &modes),
            Err("--m: expected poll, send or both, got \"x\"".into())
        );
        let num = |s: &str| s.parse::<u8>().map_err(|_| format!("bad {s:?}"));
        assert_eq!(a.list("--l", num), Ok(vec![1, 2, 3]));
        assert_eq!(a.list("--l", num), Err("bad \"y\"".into()));
        assert!(a.list("--l", num).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn parse_plain_knows_no_mpa_options() {
        let r = parse_plain(argv(&["--no-crc"]), |_, _| Ok(false));
        assert_eq!(r, Err("unknown argument \"--no-crc\"".into()));
        assert_eq!(
            parse_plain(argv(&["--help"]), |_, _| Ok(true)),
            Err(String::new())
        );
    }

    #[test]
    fn parse_list_routes_arguments() {
        let mut opts = Options::default();
        let mut port = 0u16;
        let r = parse_list(argv(&["--no-crc", "-p", "9", "-v"]), &mut opts, |a, av| {
            Ok(match a {
                "-p" => {
                    port = av.number("-p")?;
                    true
                }
                _ => false,
            })
        });
        assert_eq!(r, Err("unknown argument \"-v\"".into()));
        assert_eq!(port, 9);
        assert!(!opts.mpa.crc);
        let r = parse_list(argv(&["-h"]), &mut opts, |_, _| Ok(true));
        assert_eq!(r, Err(String::new()));
    }

    #[test]
    fn mpa_options_apply() {
        let mut opts = Options::default();
        let mut a = argv(&["4"]);
        assert_eq!(mpa_option("--no-crc", &mut a, &mut opts), Ok(true));
        assert_eq!(mpa_option("--ird", &mut a, &mut opts), Ok(true));
        assert_eq!(mpa_option("--rev1", &mut a, &mut opts), Ok(true));
        assert_eq!(mpa_option("-v", &mut a, &mut opts), Ok(false));
        assert!(!opts.mpa.crc);
        assert_eq!(opts.mpa.ird, 4);
        assert_eq!(opts.mpa.revision, 1);
        assert!(!opts.mpa.peer_to_peer);
    }
}

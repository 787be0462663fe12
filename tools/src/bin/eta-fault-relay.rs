//! eta-fault-relay: a TCP relay that damages an iWARP stream on purpose, from a
//! seed, between a client and a server (eta or siw at either end). See
//! `eta_tools::relay` and `docs/testing.md` ("Faults on the path").

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use eta_tools::args::{Argv, parse_plain};
use eta_tools::relay::{FAULT_HELP, Plan, Relay};

const HELP: &str = "\
eta-fault-relay: a TCP relay on 127.0.0.1 that damages the stream on purpose

USAGE:
  eta-fault-relay --listen PORT --to HOST:PORT [--fault KIND[:ARGS]]... [--seed N]
                  [--once] [--deadline SECS] [-v]

DESCRIPTION:
  Accepts TCP clients on 127.0.0.1:PORT, connects each to HOST:PORT and copies both
  directions, applying every --fault given. Segment sizes and delays come from the
  seed: the same seed cuts the same stream the same way. Fault offsets count the
  octets of one direction after its MPA Request or Reply.

OPTIONS:
  --listen PORT      port to listen on, 127.0.0.1 (0: any; the port is printed)
  --to HOST:PORT     where to connect each client
  --fault KIND[:ARGS]  a fault (repeatable):
";

const HELP_TAIL: &str = "
  --seed N           seed of segment sizes and delays (default 0)
  --once             relay one client connection, then exit
  --deadline SECS    reset a session that lasts longer (default 60)
  -v                 log each session's counters on stderr
  -h, --help         this text

EXIT STATUS:
  0 after --once's session ended (or never, without --once); 1 if the relay could
  not start; 2 on bad usage.

EXAMPLES:
  eta-fault-relay --listen 7000 --to 127.0.0.1:7174 --fault resegment:1:65536 --seed 3
  eta-fault-relay --listen 7000 --to 10.0.2.15:7174 --fault corrupt:c2s:100 --once
";

struct Args {
    listen: u16,
    to: SocketAddr,
    plan: Plan,
}

fn parse(argv: Argv) -> Result<Args, String> {
    let (mut listen, mut to) = (None, None);
    let mut plan = Plan::default();
    parse_plain(argv, |arg, argv| {
        match arg {
            "--listen" => listen = Some(argv.number::<u16>("--listen")?),
            "--to" => {
                let v = argv.value("--to")?;
                let addr = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--to {v:?}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--to {v:?}: no address"))?;
                to = Some(addr);
            }
            "--fault" => plan.faults.push(argv.value("--fault")?.parse()?),
            "--seed" => plan.seed = argv.number("--seed")?,
            "--once" => plan.max_sessions = Some(1),
            "--deadline" => plan.deadline = argv.seconds("--deadline")?,
            "-v" => plan.verbose = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(Args {
        listen: listen.ok_or("--listen PORT is required")?,
        to: to.ok_or("--to HOST:PORT is required")?,
        plan,
    })
}

fn main() -> ExitCode {
    let help = format!("{HELP}{FAULT_HELP}\n{HELP_TAIL}");
    let args = match parse(Argv::from_env()) {
        Ok(a) => a,
        Err(m) if m.is_empty() => {
            print!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(m) => {
            eprintln!("eta-fault-relay: {m}\n\n{help}");
            return ExitCode::from(2);
        }
    };
    let once = args.plan.max_sessions.is_some();
    let listen = SocketAddr::from(([127, 0, 0, 1], args.listen));
    let relay = match Relay::start(listen, args.to, args.plan) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eta-fault-relay: listening on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("eta-fault-relay: listening on {}", relay.local_addr());
    if once {
        let stats = relay.wait();
        println!("eta-fault-relay: {stats:?}");
    } else {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    ExitCode::SUCCESS
}

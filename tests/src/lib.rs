//! Workspace-level tests of eta: real, unmodified programs under `LD_PRELOAD`.
//!
//! This library holds what the tests in `tests/` share: where `libeta.so` is,
//! finding a program (or failing with the Debian package to install), free
//! loopback ports, processes that are always killed (each in its own process
//! group), waits that always time out, temporary directories, building the C
//! programs of `c/` (plainly, or strictly against `include/eta.h` and `libeta.so`),
//! and running them as server/client pairs ([`Pair`]).

use std::fs::{self, File};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The message `ld.so` prints when it cannot preload a library.
const LDSO_ERROR: &str = "cannot be preloaded";

/// The directory of this crate (for `c/` and `py/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The absolute path of the built `libeta.so`: `$ETA_PRELOAD_LIB` if set, else the
/// one Cargo built beside this test binary (`target/<profile>/deps/`, else
/// `target/<profile>/`).
pub fn shim() -> PathBuf {
    if let Some(p) = std::env::var_os("ETA_PRELOAD_LIB") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ETA_PRELOAD_LIB={} is not a file", p.display());
        return fs::canonicalize(p).unwrap();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary's directory");
    // `deps/` first: built as this crate's dependency, the cdylib lands there and
    // is not copied up to `target/<profile>/`, where an older one may lie.
    for dir in [Some(deps), deps.parent()].into_iter().flatten() {
        let p = dir.join("libeta.so");
        if p.is_file() {
            return fs::canonicalize(p).unwrap();
        }
    }
    panic!(
        "libeta.so not found next to {} (build it with `cargo build -p eta-preload` \
         in the same profile, or set ETA_PRELOAD_LIB)",
        exe.display()
    );
}

/// Finds `program` on the `PATH` (and in the sbin directories), or fails the test
/// naming the Debian package that provides it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let p = dir.join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{program}` is not installed: install the Debian package `{package}` \
         (bash scripts/install-deps.sh does)"
    );
}

/// Debian's `python3` (`/usr/bin/python3`), else whichever is on the `PATH`.
pub fn python3() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.is_file() {
        debian
    } else {
        require("python3", "python3")
    }
}

/// Puts `cmd` under the shim: `LD_PRELOAD=<libeta.so>`, `ETA_LOG` unset.
pub fn shimmed(cmd: &mut Command) -> &mut Command {
    cmd.env("LD_PRELOAD", shim()).env_remove("ETA_LOG")
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "eta-tests-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn kill_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill with a negative pid signals the process group we created for
    // this child (process_group(0)); it only sends a signal.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A long-running program in its own process group, output captured to files;
/// the whole group is killed when dropped, whatever happened.
pub struct Server {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Server {
    /// Starts `cmd` (its output goes to files in `dir`).
    pub fn start(name: &str, cmd: &mut Command, dir: &Path) -> Server {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Server {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed so far: (stdout, stderr).
    pub fn output(&self) -> (String, String) {
        let read =
            |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
        (read(&self.stdout), read(&self.stderr))
    }

    /// Fails the test if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let (out, err) = self.output();
            panic!(
                "{} exited early ({status}):\n--- stdout\n{out}\n--- stderr\n{err}",
                self.name
            );
        }
    }

    /// Waits until something accepts on 127.0.0.1:`port`.
    pub fn wait_port(&mut self, port: u16, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            self.assert_running();
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < end,
                "{} did not listen on port {port} within {timeout:?}: {:?}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until its stdout has a first line, and returns it.
    pub fn first_line(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            self.assert_running();
            let (out, _) = self.output();
            if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
                return line.to_string();
            }
            assert!(
                Instant::now() < end,
                "{} printed no line within {timeout:?}: {:?}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails the test unless `libeta.so` is mapped into the process.
    pub fn assert_shim_loaded(&self) {
        let maps = fs::read_to_string(format!("/proc/{}/maps", self.pid())).unwrap_or_default();
        assert!(
            maps.contains("libeta.so"),
            "{} (pid {}) does not have libeta.so mapped",
            self.name,
            self.pid()
        );
    }

    /// Waits until it exits by itself (killing its process group and failing the
    /// test after `timeout`) and returns what it did.
    pub fn finish(mut self, timeout: Duration) -> Outcome {
        let end = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() >= end {
                let (out, err) = self.output();
                kill_group(&mut self.child);
                panic!(
                    "{} did not exit within {timeout:?}:\n--- stdout\n{out}\n--- stderr\n{err}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (out, err) = self.output();
        Outcome {
            status,
            stdout: out.into_bytes(),
            stderr: err.into_bytes(),
        }
    }

    /// Stops it now (the whole process group) and returns what it printed.
    pub fn stop(mut self) -> (String, String) {
        kill_group(&mut self.child);
        self.output()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// What a finished program did.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Fails the test (showing the output) unless stdout has every line of `lines`
    /// (each a whole line).
    pub fn assert_lines(&self, what: &str, lines: &[&str]) -> &Self {
        let out = self.out();
        for want in lines {
            assert!(
                out.lines().any(|l| l == *want),
                "{what}: no line {want:?} in its output:\n{out}"
            );
        }
        self
    }

    /// Fails the test (showing the output) unless the program exited with 0 and
    /// `ld.so` did not complain about the preload.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.out(),
            self.err()
        );
        assert!(
            !self.err().contains(LDSO_ERROR),
            "{what}: ld.so did not preload libeta.so: {}",
            self.err()
        );
        self
    }
}

/// Runs `cmd` to the end (stdin empty), in its own process group, killed after
/// `timeout` (which fails the test).
pub fn run(what: &str, cmd: &mut Command, timeout: Duration) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= end {
            kill_group(&mut child);
            let (o, e) = (out_reader.join().unwrap(), err_reader.join().unwrap());
            panic!(
                "{what} did not finish within {timeout:?}:\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: as in kill_group: signals only the child's own process group, so that
    // nothing it started lingers (ESRCH when the group is gone is fine).
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    Outcome {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Compiles `c/<source>` into `dir` with `cc` and the flags given (plus
/// `-I include -pthread`), and returns the executable's path.
pub fn compile_c(source: &str, out_name: &str, flags: &[&str], dir: &Path) -> PathBuf {
    cc(source, out_name, flags, &[], dir)
}

/// The repository's `include/` (eta.h).
pub fn include_dir() -> PathBuf {
    crate_dir().join("../include")
}

/// Compiles `c/<source>` (a program of eta's C API, `include/eta.h`) strictly, with
/// `-Wall -Wextra -Werror -O2` and the flags given, linked against the `libeta.so` of
/// [`shim()`] (`-leta`, with an rpath to it), and returns the executable's path.
pub fn compile_eta_c(source: &str, out_name: &str, flags: &[&str], dir: &Path) -> PathBuf {
    let lib_dir = shim()
        .parent()
        .expect("libeta.so's directory")
        .to_path_buf();
    let mut all = vec!["-Wextra", "-O2"];
    all.extend_from_slice(flags);
    let link = [
        format!("-L{}", lib_dir.display()),
        format!("-Wl,-rpath,{}", lib_dir.display()),
        "-leta".to_string(),
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    cc(source, out_name, &all, &link, dir)
}

/// As [`compile_eta_c`], but not linked against `libeta.so`: `-Wall -Wextra -Werror
/// -O2` and the flags given (e.g. a `-D` that leaves out every `eta_*` call).
pub fn compile_c_strict(source: &str, out_name: &str, flags: &[&str], dir: &Path) -> PathBuf {
    let mut all = vec!["-Wextra", "-O2"];
    all.extend_from_slice(flags);
    cc(source, out_name, &all, &[], dir)
}

/// `cc <flags> -Wall -Werror -I include -pthread -o <dir>/<out_name> c/<source> <libs>`.
fn cc(source: &str, out_name: &str, flags: &[&str], libs: &[&str], dir: &Path) -> PathBuf {
    let cc = require("cc", "gcc");
    let out = dir.join(out_name);
    let mut cmd = Command::new(cc);
    cmd.args(flags)
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(include_dir())
        .arg("-pthread")
        .arg("-o")
        .arg(&out)
        .arg(crate_dir().join("c").join(source))
        .args(libs);
    run(&format!("cc {source}"), &mut cmd, Duration::from_secs(60)).assert_success("cc");
    out
}

/// A server/client pair of one C program, as the `ddp_*.c` programs of `c/` are
/// written: `<exe> <server args...>` prints its port on the first line of stdout and
/// exits by itself once its clients are done; each client is `<exe> client <port>
/// <args...>`. Every process runs in its own process group, killed on time-out.
pub struct Pair<'a> {
    /// The executable.
    pub exe: &'a Path,
    /// The server's arguments (`["server", ...]`).
    pub server: &'a [&'a str],
    /// One entry per client run, one after the other: the arguments after the port.
    pub clients: &'a [&'a [&'a str]],
    /// Whether both run under `LD_PRELOAD` of [`shim()`] (else: as they are, e.g.
    /// linked against an installed `libeta.so`).
    pub preload: bool,
    /// Each process's time limit.
    pub timeout: Duration,
}

impl Pair<'_> {
    /// Runs the server, then each client; fails the test (showing all output) unless
    /// every process exits 0 with an empty stderr (the shim prints nothing). Returns
    /// the server's outcome and the clients' in order.
    pub fn run(&self, dir: &Path) -> (Outcome, Vec<Outcome>) {
        let name = self
            .exe
            .file_name()
            .map_or("program".into(), |n| n.to_string_lossy().into_owned());
        let command = |args: &[&str]| {
            let mut cmd = Command::new(self.exe);
            cmd.args(args);
            if self.preload {
                shimmed(&mut cmd);
            } else {
                // Cargo's LD_LIBRARY_PATH (target/<profile>, where an older
                // libeta.so may lie) would win over the program's own RUNPATH.
                cmd.env_remove("LD_PRELOAD")
                    .env_remove("ETA_LOG")
                    .env_remove("LD_LIBRARY_PATH");
            }
            cmd
        };
        let mut server = Server::start(&format!("{name}-server"), &mut command(self.server), dir);
        let port = server.first_line(Duration::from_secs(30));
        assert!(
            port.parse::<u16>().is_ok(),
            "{name} server printed {port:?}, not a port"
        );
        if self.preload {
            server.assert_shim_loaded();
        }
        let mut clients = Vec::new();
        for args in self.clients {
            let mut full = vec!["client", port.as_str()];
            full.extend_from_slice(args);
            let what = format!("{name} client {}", args.join(" "));
            let o = run(&what, &mut command(&full), self.timeout);
            if !o.status.success() || !o.stderr.is_empty() {
                let (sout, serr) = server.stop();
                panic!(
                    "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n\
                     --- server stdout\n{sout}\n--- server stderr\n{serr}",
                    o.status,
                    o.out(),
                    o.err()
                );
            }
            clients.push(o);
        }
        let s = server.finish(self.timeout);
        assert!(
            s.status.success() && s.stderr.is_empty(),
            "{name} server failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            s.status,
            s.out(),
            s.err()
        );
        (s, clients)
    }
}

/// The two builds of each C program: plain, and with `_FORTIFY_SOURCE=2 -O2`
/// (which turns `read`/`recv`/`recvfrom`/`poll` into glibc's `__*_chk`).
pub const C_BUILDS: [(&str, &[&str]); 2] = [
    ("plain", &["-O0"]),
    ("fortify", &["-O2", "-D_FORTIFY_SOURCE=2"]),
];

/// The undefined dynamic symbols of an executable (`nm -D --undefined-only`).
pub fn imported_symbols(exe: &Path) -> Vec<String> {
    let nm = require("nm", "binutils");
    let o = run(
        "nm",
        Command::new(nm).arg("-D").arg("--undefined-only").arg(exe),
        Duration::from_secs(30),
    );
    o.assert_success("nm");
    o.out()
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect()
}

/// curl (`curl`), or fail naming its package.
pub fn curl_or_fail() -> PathBuf {
    require("curl", "curl")
}

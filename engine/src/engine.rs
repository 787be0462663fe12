//! The process-wide engine: its threads, started when the first connection needs
//! them (never at load), and the memory table every connection shares. A process
//! made by `fork` starts its own engine at its first connection (the parent's
//! threads do not exist in it).

use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use eta_ddp_core::{KeySource, MemoryTable, predictable_keys};

use crate::config::EngineConfig;
use crate::error::Error;
use crate::handoff::WorkerShared;
use crate::sys;
use crate::worker::Worker;

/// How starting the engine ended, kept for the life of the process.
type Started = Result<Engine, Arc<io::Error>>;

pub(crate) struct Engine {
    workers: Vec<Arc<WorkerShared>>,
    next: AtomicUsize,
    next_id: AtomicU64,
    pub table: MemoryTable,
}

/// The current process's engine (leaked: an engine lives as long as its process).
/// A child made by `fork` inherits the pointer but none of the engine's threads: a
/// `pthread_atfork` child handler (installed with the first engine) clears it, so
/// the child's first connection starts the child's own engine.
static CURRENT: AtomicPtr<Started> = AtomicPtr::new(std::ptr::null_mut());
/// Serializes starting an engine.
static STARTING: Mutex<()> = Mutex::new(());
static ATFORK: Once = Once::new();

extern "C" fn forget_in_child() {
    CURRENT.store(std::ptr::null_mut(), Ordering::Release);
}

fn current() -> Option<&'static Started> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in CURRENT comes from `Box::leak` below and is never
    // freed, so it is valid for the rest of the process.
    unsafe { p.as_ref() }
}

/// The engine, started on first use in this process with the configuration from the
/// environment.
pub(crate) fn get() -> Result<&'static Engine, Error> {
    let e = match current() {
        Some(e) => e,
        None => {
            let _guard = STARTING.lock().unwrap_or_else(|p| p.into_inner());
            match current() {
                Some(e) => e,
                None => {
                    ATFORK.call_once(|| crate::sys::on_fork_child(forget_in_child));
                    let engine = EngineConfig::from_env()
                        .and_then(Engine::start)
                        .map_err(Arc::new);
                    let e: &'static Started = Box::leak(Box::new(engine));
                    CURRENT.store((e as *const Started).cast_mut(), Ordering::Release);
                    e
                }
            }
        }
    };
    e.as_ref().map_err(|e| Error::Engine(Arc::clone(e)))
}

/// Whether the engine threads have been started in this process.
pub fn started() -> bool {
    current().is_some_and(|e| e.is_ok())
}

impl Engine {
    fn start(config: EngineConfig) -> io::Result<Self> {
        let table = MemoryTable::with_keys(STAG_CAPACITY, random_keys()?);
        let mut workers = Vec::with_capacity(config.engines);
        for i in 0..config.engines {
            let shared = Arc::new(WorkerShared::new()?);
            let worker = Worker::new(Arc::clone(&shared), table.clone(), config.spin)?;
            let cpu = (!config.cpus.is_empty()).then(|| config.cpus[i % config.cpus.len()]);
            std::thread::Builder::new()
                .name(format!("eta-engine-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        // Pinning is a wish: a CPU outside the allowed set leaves the
                        // thread unpinned rather than failing connections.
                        let _ = crate::sys::pin_to_cpu(cpu);
                    }
                    worker.run()
                })?;
            workers.push(shared);
        }
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            table,
        })
    }

    /// A fresh connection id.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The engine thread for the next connection (round-robin).
    pub fn pick(&self) -> Arc<WorkerShared> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        Arc::clone(&self.workers[i])
    }
}

/// Registrations per process: 16 bits of index, so STags carry 16 bits of key.
const STAG_CAPACITY: u32 = 65_535;

/// STag keys from the kernel's random source, 64 per `getrandom` call, so that
/// knowing its own STags tells a peer nothing about the process's other regions
/// (docs/architecture.md, "STags and what a peer can guess"). Fails the engine's
/// start if the kernel has no random source. Should a later refill fail, the keys
/// go on from a SplitMix64 sequence seeded with a secret drawn at the start.
fn random_keys() -> io::Result<KeySource> {
    let mut seed = [0u8; 8];
    sys::random_fill(&mut seed)?;
    let mut fallback = predictable_keys(u64::from_ne_bytes(seed));
    let mut octets = [0u8; 256];
    sys::random_fill(&mut octets)?;
    let mut at = 0;
    Ok(Box::new(move || {
        if at == octets.len() {
            if sys::random_fill(&mut octets).is_err() {
                return fallback();
            }
            at = 0;
        }
        let mut key = [0u8; 4];
        key.copy_from_slice(&octets[at..at + 4]);
        at += 4;
        u32::from_ne_bytes(key)
    }))
}

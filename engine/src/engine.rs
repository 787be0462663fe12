//! The process-wide engine: its threads, started when the first connection needs
//! them (never at load), and the memory table every connection shares.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use eta_ddp_core::MemoryTable;

use crate::config::EngineConfig;
use crate::error::Error;
use crate::shared::WorkerShared;
use crate::sys::EventFd;
use crate::worker::{NewConn, Worker};

pub(crate) struct Engine {
    workers: Vec<Arc<WorkerShared>>,
    next: AtomicUsize,
    next_id: AtomicU64,
    pub table: MemoryTable,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine, started on first use with the configuration from the environment.
pub(crate) fn get() -> Result<&'static Engine, Error> {
    ENGINE
        .get_or_init(|| {
            let config = EngineConfig::from_env().map_err(|e| e.to_string())?;
            Engine::start(config).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Engine(e.clone()))
}

/// Whether the engine threads have been started in this process.
pub fn started() -> bool {
    ENGINE.get().is_some_and(|e| e.is_ok())
}

impl Engine {
    fn start(config: EngineConfig) -> io::Result<Self> {
        let table = MemoryTable::new();
        let mut workers = Vec::with_capacity(config.engines);
        for i in 0..config.engines {
            let shared = Arc::new(WorkerShared {
                incoming: Mutex::new(Vec::new()),
                ready: crossbeam_queue::SegQueue::new(),
                parked: AtomicBool::new(false),
                wake: EventFd::new()?,
            });
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

    /// Hands an established connection to its engine thread.
    pub fn hand_over(&self, nc: NewConn) {
        let worker = Arc::clone(&nc.shared.worker);
        worker
            .incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(nc);
        worker.kick();
    }
}

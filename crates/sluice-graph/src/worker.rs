//! Worker threads: one graph each, pinned to a core, running the dispatch
//! loop until their inputs are done or they are told to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Graph, GraphStats, RunState};

/// Idle loops before a worker starts to nap between polls. Polling an idle
/// interface costs a core; napping trades a little wake-up latency for it.
const IDLE_LOOPS_BEFORE_NAP: u32 = 4096;
const NAP: Duration = Duration::from_micros(100);
/// Longest sleep on readiness: background timers (neighbour retries, MAC
/// aging) and the stop flag are looked at least this often.
const SLEEP: Duration = Duration::from_millis(10);

/// Running workers.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    stats: Vec<Arc<GraphStats>>,
    cores: Vec<Option<usize>>,
    stop: Arc<AtomicBool>,
    started: Instant,
    /// Per worker: nanoseconds its dispatch loop ran, once it has ended.
    ran: Vec<Arc<std::sync::atomic::AtomicU64>>,
}

impl Workers {
    /// Starts one thread per graph. Graph `w` runs on `cores[w]` when given
    /// (unpinned if that core does not exist); without a core list, worker
    /// `w` takes core `w + 1`, wrapping around, and leaves core 0 to the
    /// main thread as VPP does. Setting `stop` stops them.
    pub fn spawn(
        graphs: Vec<Graph>,
        cores: &[usize],
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Workers> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut handles = Vec::new();
        let mut stats = Vec::new();
        let mut pinned = Vec::new();
        let mut ran = Vec::new();
        for (w, mut graph) in graphs.into_iter().enumerate() {
            let core = match cores.get(w) {
                Some(c) => available.contains(c).then_some(*c),
                None => default_core(w, &available),
            };
            stats.push(graph.stats());
            pinned.push(core);
            let stop = stop.clone();
            let my_time = Arc::new(std::sync::atomic::AtomicU64::new(0));
            ran.push(my_time.clone());
            let h = std::thread::Builder::new()
                .name(format!("sluice_wk_{w}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id: c });
                    }
                    let t0 = Instant::now();
                    run(&mut graph, &stop);
                    my_time.store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    graph.stop();
                })?;
            handles.push(h);
        }
        Ok(Workers {
            handles,
            stats,
            cores: pinned,
            stop,
            started: Instant::now(),
            ran,
        })
    }

    /// How long the longest-running worker's dispatch loop ran, once all
    /// have ended (exact, unlike the time a watcher notices the end).
    pub fn ran(&self) -> Option<Duration> {
        let v: Vec<u64> = self.ran.iter().map(|t| t.load(Ordering::Relaxed)).collect();
        (v.iter().all(|&n| n > 0)).then(|| Duration::from_nanos(v.into_iter().max().unwrap_or(0)))
    }

    /// Each worker's counters.
    pub fn stats(&self) -> &[Arc<GraphStats>] {
        &self.stats
    }

    /// The core each worker is pinned to.
    pub fn cores(&self) -> &[Option<usize>] {
        &self.cores
    }

    /// Time since the workers started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The flag that stops every worker when set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Whether every worker has finished.
    pub fn finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// Asks the workers to stop and waits for them. Returns how many
    /// panicked (a bug; their packets are lost to the pool count).
    pub fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for every worker to finish by itself. Returns how many panicked.
    pub fn join(self) -> usize {
        self.handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| r.is_err())
            .count()
    }
}

/// Pins the calling thread to `core` (the main thread, when configured);
/// false if that core is not one this process may use.
pub fn pin_current(core: usize) -> bool {
    let allowed = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .any(|c| c.id == core);
    allowed && core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// The core worker `w` is pinned to when none is configured.
fn default_core(w: usize, available: &[usize]) -> Option<usize> {
    if available.is_empty() {
        return None;
    }
    Some(available[(w + 1) % available.len()])
}

pub use crate::wait::readable as wait_readable;

/// The dispatch loop of one worker.
///
/// It spins while packets come. After `IDLE_LOOPS_BEFORE_NAP` empty turns
/// it sleeps: on its inputs' descriptors when every input has one (a
/// kernel interface), waking the moment one turns readable or after
/// `SLEEP` for the timers; otherwise (a generator, a replay) in short
/// naps.
pub fn run(graph: &mut Graph, stop: &AtomicBool) {
    let mut idle = 0u32;
    let mut fds = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match graph.run_once() {
            RunState::Done => break,
            RunState::Busy => idle = 0,
            RunState::Idle => {
                idle = idle.saturating_add(1);
                if idle > IDLE_LOOPS_BEFORE_NAP {
                    fds.clear();
                    if graph.wait_fds(&mut fds) && !fds.is_empty() {
                        // An error (a descriptor closed under us) ends the
                        // sleep early; the next turn polls the inputs.
                        let _ = wait_readable(&fds, SLEEP);
                    } else {
                        std::thread::sleep(NAP);
                    }
                }
            }
        }
    }
}

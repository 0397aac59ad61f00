//! The resilience state of one process: a [`Target`] (breaker, concurrency limit, counters)
//! per module it calls, built from the topology's policies, and the module-side faults on
//! its event handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bus::{Envelope, HandleError, Handler, Subscription};
use resilience::{Action, Clock, Edge, FaultBoard, SystemClock, Target};

use crate::{Module, Policies};

/// One [`Target`] per called module, shared by every edge of this process towards it.
#[derive(Clone)]
pub(crate) struct Targets {
    policies: Policies,
    clock: Arc<dyn Clock>,
    faults: FaultBoard,
    made: Arc<Mutex<BTreeMap<Module, Arc<Target>>>>,
}

impl Targets {
    pub(crate) fn new(policies: Policies, faults: FaultBoard) -> Targets {
        Targets { policies, clock: Arc::new(SystemClock), faults, made: Arc::default() }
    }

    fn target(&self, module: Module) -> Arc<Target> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.entry(module)
            .or_insert_with(|| {
                Target::new(module.as_str(), self.policies.for_target(module), self.clock.clone())
            })
            .clone()
    }

    /// The edge from `caller` (a module, or `gateway`) to `module`.
    pub(crate) fn edge(&self, caller: &str, module: Module) -> Arc<Edge> {
        Edge::caller(caller, self.target(module), self.faults.clone())
    }

    /// Calls into `module` itself, wherever they come from.
    pub(crate) fn callee(&self, module: Module) -> Arc<Edge> {
        Edge::callee(module.as_str(), self.faults.clone())
    }

    pub(crate) fn all(&self) -> Vec<Arc<Target>> {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

/// Faults aimed at a module reach its event handlers too: an error is a failed delivery
/// (retried with backoff), latency and hangs hold the delivery, a crash ends the process.
pub(crate) fn with_faults(mut s: Subscription, module: Module, faults: FaultBoard) -> Subscription {
    s.handler = Arc::new(FaultyHandler { inner: s.handler, module, faults });
    s
}

struct FaultyHandler {
    inner: Arc<dyn Handler>,
    module: Module,
    faults: FaultBoard,
}

#[async_trait]
impl Handler for FaultyHandler {
    async fn handle(&self, event: &Envelope) -> Result<(), HandleError> {
        match self.faults.for_module(self.module.as_str()) {
            None => {}
            Some(Action::Error) => return Err(HandleError::Retry("injected fault".into())),
            Some(Action::Delay(d)) => tokio::time::sleep(d).await,
            Some(Action::Hang(id, until)) => {
                self.faults.hang(id, until).await;
            }
            Some(Action::Crash) => {
                tracing::error!(module = %self.module, "injected fault: crashing this process");
                std::process::abort();
            }
        }
        self.inner.handle(event).await
    }
}

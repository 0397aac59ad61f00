//! Metering, as Lambda bills: per invocation the duration rounded up to the millisecond
//! (plus the init phase on a cold start, which Lambda bills since August 2025), the memory
//! size, and the request; per function the totals and what they would cost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Arch, Prices, meters};

/// What one invocation cost: Lambda's `REPORT` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub request_id: String,
    /// Which instance ran it (a number per function, never reused).
    pub instance: u64,
    /// The instance's first invocation: it was started for it (or while it waited).
    pub cold: bool,
    /// Spawn to the instance's first request for work; only on a cold start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    /// Handed to the instance until its answer arrived.
    pub duration_ms: f64,
    /// Duration (plus init, when cold) rounded up to the millisecond.
    pub billed_ms: u64,
    /// The instance's peak resident memory so far.
    pub max_memory_mb: u64,
    /// The memory size billed.
    pub memory_size_mb: u32,
}

impl Report {
    pub(crate) fn new(
        request_id: String,
        instance: u64,
        init: Option<Duration>,
        duration: Duration,
        max_memory_mb: u64,
        memory_size_mb: u32,
    ) -> Report {
        let billed = duration + init.unwrap_or_default();
        Report {
            request_id,
            instance,
            cold: init.is_some(),
            init_ms: init.map(ms),
            duration_ms: ms(duration),
            billed_ms: u64::try_from(billed.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
            max_memory_mb,
            memory_size_mb,
        }
    }

    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * f64::from(self.memory_size_mb) / 1024.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Since start, per function.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) invocations: u64,
    pub(crate) cold_starts: u64,
    pub(crate) init_ms: f64,
    pub(crate) duration_ms: f64,
    pub(crate) billed_ms: u64,
    pub(crate) gb_seconds: f64,
    pub(crate) max_memory_mb: u64,
    pub(crate) function_errors: u64,
    pub(crate) crashes: u64,
    pub(crate) timeouts: u64,
    pub(crate) throttled: u64,
    pub(crate) instances_started: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, function: &str, r: &Report, arch: Arch, prices: &Prices) {
        self.invocations += 1;
        self.duration_ms += r.duration_ms;
        self.billed_ms += r.billed_ms;
        self.gb_seconds += r.gb_seconds();
        self.max_memory_mb = self.max_memory_mb.max(r.max_memory_mb);
        let f = function.to_owned();
        if let Some(init) = r.init_ms {
            self.cold_starts += 1;
            self.init_ms += init;
            metrics::counter!(meters::COLDSTARTS, "faas.name" => f.clone()).increment(1);
            metrics::histogram!(meters::INIT_DURATION, "faas.name" => f.clone())
                .record(init / 1000.0);
        }
        metrics::counter!(meters::INVOCATIONS, "faas.name" => f.clone()).increment(1);
        metrics::histogram!(meters::INVOKE_DURATION, "faas.name" => f.clone())
            .record(r.duration_ms / 1000.0);
        metrics::histogram!(meters::BILLED_DURATION, "faas.name" => f.clone())
            .record(r.billed_ms as f64 / 1000.0);
        metrics::gauge!(meters::COST, "faas.name" => f).set(self.cost(arch, prices));
    }

    pub(crate) fn cost(&self, arch: Arch, prices: &Prices) -> f64 {
        self.invocations as f64 * prices.per_request + self.gb_seconds * prices.per_gb_second(arch)
    }
}

/// One function, as `/metrics` and the topology view report it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FunctionStats {
    pub name: String,
    pub memory_mb: u32,
    pub arch: Arch,
    pub max_concurrency: u32,
    pub max_queue: u32,
    pub idle_timeout_ms: u64,
    /// Instances running now, and how many of them are busy.
    pub instances: u32,
    pub busy: u32,
    /// Invocations waiting for an instance now.
    pub queued: u32,
    /// Since start.
    pub invocations: u64,
    pub cold_starts: u64,
    pub instances_started: u64,
    /// Mean init of the cold starts, and mean duration of all invocations.
    pub init_ms_mean: f64,
    pub duration_ms_mean: f64,
    pub billed_ms: u64,
    pub gb_seconds: f64,
    pub max_memory_mb: u64,
    /// Invocations that returned an error, lost their instance, ran out of time, or were
    /// refused because the queue was full.
    pub function_errors: u64,
    pub crashes: u64,
    pub timeouts: u64,
    pub throttled: u64,
    /// What these invocations would cost on Lambda at the configured prices.
    pub cost_usd: f64,
}

impl FunctionStats {
    pub(crate) fn new(
        config: &crate::FunctionConfig,
        t: &Totals,
        now: Now,
        prices: &Prices,
    ) -> Self {
        let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        FunctionStats {
            name: config.name.clone(),
            memory_mb: config.memory_mb,
            arch: config.arch,
            max_concurrency: config.max_concurrency,
            max_queue: config.max_queue,
            idle_timeout_ms: u64::try_from(config.idle_timeout.as_millis()).unwrap_or(u64::MAX),
            instances: now.instances,
            busy: now.busy,
            queued: now.queued,
            invocations: t.invocations,
            cold_starts: t.cold_starts,
            instances_started: t.instances_started,
            init_ms_mean: mean(t.init_ms, t.cold_starts),
            duration_ms_mean: mean(t.duration_ms, t.invocations),
            billed_ms: t.billed_ms,
            gb_seconds: t.gb_seconds,
            max_memory_mb: t.max_memory_mb,
            function_errors: t.function_errors,
            crashes: t.crashes,
            timeouts: t.timeouts,
            throttled: t.throttled,
            cost_usd: t.cost(config.arch, prices),
        }
    }
}

/// A pool's state at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Now {
    pub(crate) instances: u32,
    pub(crate) busy: u32,
    pub(crate) queued: u32,
}

/// The peak resident set of a process (`VmHWM`), in MiB rounded up; 0 where unknown.
pub(crate) fn peak_memory_mb(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_the_millisecond_and_counts_init_when_cold() {
        let warm = Report::new("a".into(), 1, None, Duration::from_micros(1_200), 20, 128);
        assert_eq!(warm.billed_ms, 2);
        assert!(!warm.cold);
        let cold = Report::new(
            "b".into(),
            1,
            Some(Duration::from_millis(8)),
            Duration::from_micros(1_001),
            20,
            1024,
        );
        assert_eq!(cold.billed_ms, 10);
        assert!(cold.cold);
        assert!((cold.gb_seconds() - 0.010).abs() < 1e-12);
        let exact = Report::new("c".into(), 1, None, Duration::from_millis(3), 20, 128);
        assert_eq!(exact.billed_ms, 3);
    }

    #[test]
    fn cost_follows_the_list_prices() {
        let prices = Prices::default();
        // One million invocations of 1 s at 1 GB: $0.20 + 1M GB-s.
        let t = Totals { invocations: 1_000_000, gb_seconds: 1_000_000.0, ..Totals::default() };
        let x86 = t.cost(Arch::X86_64, &prices);
        assert!((x86 - (0.20 + 16.6667)).abs() < 0.001, "{x86}");
        let arm = t.cost(Arch::Arm64, &prices);
        assert!((arm - (0.20 + 13.3334)).abs() < 0.001, "{arm}");
    }

    #[test]
    fn peak_memory_of_this_process_is_known() {
        assert!(peak_memory_mb(Some(std::process::id())) > 0);
        assert_eq!(peak_memory_mb(None), 0);
    }
}

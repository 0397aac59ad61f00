//! Call policies from the topology file: `[policy]` sets the defaults for every target, and
//! `[policy.targets.<module>]` overrides any of them for calls to one module.
//!
//! The defaults are shown.
//!
//! ```toml
//! [policy]
//! timeout_ms = 10000
//! max_concurrent = 64
//! retry = { attempts = 3, backoff_ms = 25, max_backoff_ms = 400 }
//! breaker = { window_calls = 20, min_calls = 10, failure_rate = 0.5, slow_call_ms = 5000,
//!             slow_rate = 1.0, open_ms = 5000, half_open_probes = 3 }
//!
//! [policy.targets.payments]
//! timeout_ms = 1000
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure};
use resilience::{Policy, Window};
use serde::{Deserialize, Serialize};

use crate::Module;

/// The policy of every target: the defaults, and what the file overrides per target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Policies {
    pub default: Policy,
    overrides: BTreeMap<Module, PolicyFile>,
}

impl Policies {
    /// How calls to `module` are made.
    pub fn for_target(&self, module: Module) -> Policy {
        let mut policy = self.default.clone();
        if let Some(o) = self.overrides.get(&module) {
            // Checked when the file was read.
            let _ = o.apply(&mut policy);
        }
        policy
    }

    pub(crate) fn from_file(file: Option<PolicyFile>) -> anyhow::Result<Policies> {
        let Some(mut file) = file else { return Ok(Policies::default()) };
        let overrides = std::mem::take(&mut file.targets);
        let mut default = Policy::default();
        file.apply(&mut default).map_err(|e| anyhow::anyhow!("policy: {e}"))?;
        for (module, o) in &overrides {
            ensure!(o.targets.is_empty(), "policy.targets.{module}: targets do not nest");
            let mut check = default.clone();
            o.apply(&mut check).map_err(|e| anyhow::anyhow!("policy.targets.{module}: {e}"))?;
        }
        Ok(Policies { default, overrides })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    timeout_ms: Option<u64>,
    max_concurrent: Option<u32>,
    retry: Option<RetryFile>,
    breaker: Option<BreakerFile>,
    #[serde(default)]
    targets: BTreeMap<Module, PolicyFile>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    attempts: Option<u32>,
    backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerFile {
    window_calls: Option<u32>,
    window_secs: Option<u64>,
    min_calls: Option<u32>,
    failure_rate: Option<f64>,
    slow_call_ms: Option<u64>,
    slow_rate: Option<f64>,
    open_ms: Option<u64>,
    half_open_probes: Option<u32>,
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: Option<T>,
    low: T,
    high: T,
) -> anyhow::Result<Option<T>> {
    match value {
        Some(v) if v < low || v > high => bail!("{name} must be {low} to {high}"),
        other => Ok(other),
    }
}

fn rate(name: &str, value: Option<f64>) -> anyhow::Result<Option<f64>> {
    match value {
        Some(v) if !(v > 0.0 && v <= 1.0) => bail!("{name} must be above 0 and at most 1"),
        other => Ok(other),
    }
}

impl PolicyFile {
    fn apply(&self, p: &mut Policy) -> anyhow::Result<()> {
        let ms = Duration::from_millis;
        if let Some(v) = in_range("timeout_ms", self.timeout_ms, 1, 600_000)? {
            p.timeout = ms(v);
        }
        if let Some(v) = in_range("max_concurrent", self.max_concurrent, 1, 100_000)? {
            p.max_concurrent = v;
        }
        if let Some(r) = &self.retry {
            if let Some(v) = in_range("retry.attempts", r.attempts, 1, 10)? {
                p.retry.attempts = v;
            }
            if let Some(v) = in_range("retry.backoff_ms", r.backoff_ms, 0, 60_000)? {
                p.retry.backoff = ms(v);
            }
            if let Some(v) = in_range("retry.max_backoff_ms", r.max_backoff_ms, 0, 60_000)? {
                p.retry.max_backoff = ms(v);
            }
            ensure!(
                p.retry.max_backoff >= p.retry.backoff,
                "retry.max_backoff_ms must not be below retry.backoff_ms"
            );
        }
        if let Some(b) = &self.breaker {
            let c = &mut p.breaker;
            match (b.window_calls, b.window_secs) {
                (Some(_), Some(_)) => bail!("breaker: window_calls or window_secs, not both"),
                (Some(n), None) => {
                    c.window = Window::Count(
                        in_range("breaker.window_calls", Some(n), 1, 10_000)?.unwrap_or(n),
                    );
                }
                (None, Some(s)) => {
                    let s = in_range("breaker.window_secs", Some(s), 1, 3600)?.unwrap_or(s);
                    c.window = Window::Time(Duration::from_secs(s));
                }
                (None, None) => {}
            }
            if let Some(v) = in_range("breaker.min_calls", b.min_calls, 1, 10_000)? {
                c.min_calls = v;
            }
            if let Some(v) = rate("breaker.failure_rate", b.failure_rate)? {
                c.failure_rate = v;
            }
            if let Some(v) = in_range("breaker.slow_call_ms", b.slow_call_ms, 1, 600_000)? {
                c.slow_call = ms(v);
            }
            if let Some(v) = rate("breaker.slow_rate", b.slow_rate)? {
                c.slow_rate = v;
            }
            if let Some(v) = in_range("breaker.open_ms", b.open_ms, 1, 3_600_000)? {
                c.open_for = ms(v);
            }
            if let Some(v) = in_range("breaker.half_open_probes", b.half_open_probes, 1, 1000)? {
                c.half_open_probes = v;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Policies> {
        Policies::from_file(Some(toml::from_str(text)?))
    }

    #[test]
    fn defaults_and_per_target_overrides() {
        let p = parse(
            "timeout_ms = 2000\nbreaker = { window_secs = 30, open_ms = 100 }\n\
             [targets.payments]\ntimeout_ms = 500\nretry = { attempts = 1 }",
        )
        .unwrap();
        let catalog = p.for_target(Module::Catalog);
        assert_eq!(catalog.timeout, Duration::from_millis(2000));
        assert_eq!(catalog.breaker.window, Window::Time(Duration::from_secs(30)));
        assert_eq!(catalog.retry.attempts, 3);
        let payments = p.for_target(Module::Payments);
        assert_eq!(payments.timeout, Duration::from_millis(500));
        assert_eq!(payments.retry.attempts, 1);
        assert_eq!(payments.breaker.open_for, Duration::from_millis(100), "inherits defaults");
        assert_eq!(Policies::from_file(None).unwrap().for_target(Module::Cart), Policy::default());
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        for (text, says) in [
            ("timeout_ms = 0", "timeout_ms"),
            ("retry = { attempts = 11 }", "retry.attempts"),
            ("retry = { backoff_ms = 50, max_backoff_ms = 10 }", "max_backoff_ms"),
            ("breaker = { failure_rate = 1.5 }", "failure_rate"),
            ("breaker = { window_calls = 5, window_secs = 5 }", "not both"),
            ("[targets.cart]\nmax_concurrent = 0", "policy.targets.cart"),
            ("[targets.billing]\ntimeout_ms = 5", "unknown variant"),
            ("timeout = 5", "unknown field"),
        ] {
            let e = format!("{:#}", parse(text).unwrap_err());
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}

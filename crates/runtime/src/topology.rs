use std::fmt;

/// Where each module runs. Only the `monolith` preset exists so far (every module in this
/// process, every client local); the other presets of the design come with the
/// microservices and serverless work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    #[default]
    Monolith,
}

impl Topology {
    pub const AVAILABLE: &'static [&'static str] = &["monolith"];

    pub fn parse(s: &str) -> anyhow::Result<Topology> {
        match s {
            "monolith" => Ok(Topology::Monolith),
            "microservices" | "serverless" | "hybrid" => anyhow::bail!(
                "topology `{s}` is not available yet; available: {}",
                Self::AVAILABLE.join(", ")
            ),
            other => anyhow::bail!(
                "unknown topology `{other}`; available: {}",
                Self::AVAILABLE.join(", ")
            ),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Monolith => "monolith",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        assert_eq!(Topology::parse("monolith").unwrap(), Topology::Monolith);
        let e = Topology::parse("microservices").unwrap_err().to_string();
        assert!(e.contains("not available yet"), "{e}");
        assert!(Topology::parse("mainframe").unwrap_err().to_string().contains("unknown"));
    }
}

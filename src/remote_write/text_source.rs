//! TEMPORARY adapter, until the agent's structured scrape result (issue 7's output seam)
//! implements `SampleSource` itself: scrapes the agent to text and parses it back. It costs a
//! parse and allocations per collection, which the seam will not.

use std::sync::Arc;

use crate::agent::Agent;
use crate::textformat;

use super::series::{SampleSink, SampleSource};

pub struct AgentTextSource {
    pub agent: Arc<Agent>,
}

impl SampleSource for AgentTextSource {
    fn collect(&mut self, _timestamp_ms: i64, out: &mut SampleSink<'_>) {
        let families = self.agent.scrape(|text| textformat::parse(text.as_bytes()));
        let families = match families {
            Ok(families) => families,
            Err(err) => {
                log::warn!("remote write: cannot parse the agent's own scrape: {err}");
                return;
            }
        };
        let mut name = String::new();
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for family in &families {
            for sample in &family.samples {
                name.clear();
                name.push_str(&family.name);
                name.push_str(sample.suffix);
                labels.clear();
                labels.extend(sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                out(&name, &labels, sample.value);
            }
        }
    }
}

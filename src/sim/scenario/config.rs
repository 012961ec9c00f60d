//! The school config that syncs a scenario: what a correct config file for it would say, for the
//! demo, benchmarks and tests that build their config in code.

use super::Scenario;
use crate::config::{
    NotifyConfig, Recipients, SchoolConfig, Secret, TimeRange, UntisConfig, WeeklySlot,
};
use crate::model::{SchoolId, Severity};
use crate::rules::RuleParams;
use crate::sim::SimConfig;
use chrono::{NaiveTime, Weekday};
use std::time::Duration;

fn at(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

impl Scenario {
    /// The `[[school]]` of this scenario with SPEC §2's defaults, syncing the simulator at
    /// `api_base` with `sim`'s credentials. Quiet hours are off; callers change what they need.
    pub fn school_config(
        &self,
        id: &str,
        name: &str,
        api_base: url::Url,
        sim: &SimConfig,
        social_workers: &[&str],
    ) -> SchoolConfig {
        SchoolConfig {
            id: SchoolId(id.to_string()),
            name: name.to_string(),
            timezone: chrono_tz::Europe::Berlin,
            state: self.state.clone(),
            holidays: self.holidays.clone(),
            half_year_starts: self.half_year_starts.clone(),
            untis: UntisConfig {
                api_base,
                ca_file: None,
                tenant_id: sim.tenant_id.clone(),
                client_id: sim.client_id.clone(),
                password: Secret::new(sim.password.clone()),
                sync_every: Duration::from_secs(15 * 60),
                sync_hours: TimeRange {
                    start: at(6, 30),
                    end: at(17, 0),
                },
                window_days: 30,
                full_reconcile_at: at(2, 30),
                request_timeout: Duration::from_secs(30),
            },
            periods: self.periods.clone(),
            recipients: Recipients {
                social_workers: social_workers.iter().map(|s| s.to_string()).collect(),
                class_teachers_override: Default::default(),
                social_workers_see_school: true,
            },
            notify: NotifyConfig {
                digest: WeeklySlot {
                    weekday: Weekday::Mon,
                    time: at(7, 0),
                },
                social_worker_digest: None,
                immediate_min_severity: Severity::Critical,
                quiet_hours: None,
                all_quiet_mail: false,
            },
            rules: RuleParams::default(),
        }
    }
}

//! Deskie's price plans and what each allows: vendor knowledge that belongs with the client of
//! that vendor, so configuration, throttling and the report read one table.

use serde::Serialize;

/// A Deskie plan. It sets the account's request budget per enabled agent (page 002 "Limits")
/// and the case caps the report checks the migration against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// 5 RPM per agent, at least 20, at most 50.
    Basic,
    /// 5 RPM per agent, at most 750.
    Standard,
    /// 10 RPM per agent, at most 1500.
    Pro,
}

impl Plan {
    /// Every plan, in price order: lets a configuration error list the accepted names.
    pub const ALL: [Plan; 3] = [Plan::Basic, Plan::Standard, Plan::Pro];

    /// Reads the plan's lowercase name as written in the configuration; `None` for anything
    /// else, so the caller can name its own key in the error.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s.trim())
    }

    /// The account's requests per minute for `agents` enabled agents: page 002 "Limits"
    /// ("5 RPM per enabled agent for Basic and Standard plans, 10 RPM for Pro"; Basic "up to 50
    /// RPM, but not less than 20", Standard "up to 750", Pro "up to 1 500").
    pub fn rpm_for(self, agents: u32) -> u32 {
        match self {
            Plan::Basic => (agents.saturating_mul(5)).clamp(20, 50),
            Plan::Standard => (agents.saturating_mul(5)).min(750),
            Plan::Pro => (agents.saturating_mul(10)).min(1500),
        }
    }

    /// The most any account on this plan gets (page 002 "Limits"): an explicit `rpm` above it
    /// can only earn 429s.
    pub fn max_rpm(self) -> u32 {
        match self {
            Plan::Basic => 50,
            Plan::Standard => 750,
            Plan::Pro => 1500,
        }
    }

    /// Cases kept per agent before Deskie deletes the oldest (Deskie's plan terms, not in the
    /// API pages): a migration above it loses history.
    pub fn cases_per_agent(self) -> u64 {
        match self {
            Plan::Basic => 6_000,
            Plan::Standard => 12_000,
            Plan::Pro => 24_000,
        }
    }

    /// New cases per agent per month (Deskie's plan terms, not in the API pages): an import
    /// uses this allowance too.
    pub fn new_cases_per_agent_month(self) -> u64 {
        match self {
            Plan::Basic => 500,
            Plan::Standard => 1_000,
            Plan::Pro => 2_000,
        }
    }

    /// Lowercase name, as configured and as shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Standard => "standard",
            Plan::Pro => "pro",
        }
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_002_examples() {
        // "10 agents and Basic plan → 50", "100 agents and Standard → 500",
        // "200 agents and Standard → 750", "100 agents and Pro → 1 000".
        assert_eq!(Plan::Basic.rpm_for(10), 50);
        assert_eq!(Plan::Standard.rpm_for(100), 500);
        assert_eq!(Plan::Standard.rpm_for(200), 750);
        assert_eq!(Plan::Pro.rpm_for(100), 1000);
        // The floor and the caps.
        assert_eq!(Plan::Basic.rpm_for(1), 20);
        assert_eq!(Plan::Basic.rpm_for(100), 50);
        assert_eq!(Plan::Pro.rpm_for(1000), 1500);
        for p in Plan::ALL {
            assert!(p.rpm_for(u32::MAX) <= p.max_rpm());
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Plan::ALL {
            assert_eq!(Plan::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Plan::parse(" pro "), Some(Plan::Pro));
        assert_eq!(Plan::parse("enterprise"), None);
        assert_eq!(Plan::parse("Pro"), None);
    }
}

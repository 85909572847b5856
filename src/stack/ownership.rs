//! Who made a stack, until when it is wanted, and which CI job it serves:
//! written as Heat tags on the stack and Neutron tags on its floating IP,
//! read back by `list` and `gc`. And `gc`'s decisions, as plain functions
//! of what the cloud shows, so what it would delete is tested without a
//! cloud. Lapsing is `gc`'s work alone: nothing in the stack expires.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::OUR_TAG;
use super::status::{Action, StackStatus, State};

pub const OWNER: &str = "provision-owner=";
pub const EXPIRES: &str = "provision-expires=";
pub const CI: &str = "provision-ci=";
/// On a floating IP: the stack it was allocated for.
pub const STACK: &str = "provision-stack=";
/// On a floating IP: when `gc` first found it without its stack.
pub const ORPHAN_SINCE: &str = "provision-orphan-since=";

/// Heat keeps at most 80 characters of a tag; Neutron 255.
pub const HEAT_TAG_MAX: usize = 80;
pub const NEUTRON_TAG_MAX: usize = 255;

/// The facts a run writes on what it makes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ownership {
    pub owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    pub ci: Option<String>,
}

impl Ownership {
    /// The tags, each cut to `max` characters (a long CI URL keeps its
    /// end, which names the job).
    pub fn tags(&self, max: usize) -> Vec<String> {
        let mut tags = Vec::new();
        if let Some(o) = &self.owner {
            tags.push(fit(OWNER, o, max));
        }
        if let Some(e) = self.expires {
            tags.push(format!("{EXPIRES}{}", rfc3339(e)));
        }
        if let Some(c) = &self.ci {
            tags.push(fit(CI, c, max));
        }
        tags
    }

    pub fn from_tags(tags: &[String]) -> Ownership {
        let value = |prefix: &str| tags.iter().find_map(|t| t.strip_prefix(prefix)).map(str::to_string);
        Ownership {
            owner: value(OWNER),
            expires: value(EXPIRES).and_then(|e| OffsetDateTime::parse(&e, &Rfc3339).ok()),
            ci: value(CI),
        }
    }

    /// A re-run keeps what the stack already says unless told otherwise.
    /// The owner stays who made the stack.
    pub fn over(self, before: &Ownership) -> Ownership {
        Ownership {
            owner: before.owner.clone().or(self.owner),
            expires: self.expires.or(before.expires),
            ci: self.ci.or_else(|| before.ci.clone()),
        }
    }

    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

impl Ownership {
    /// A deploy's facts from its flags and environment: the owner is
    /// PROVISION_OWNER, else the CI's user (GitLab, GitHub), else the cloud
    /// user; the CI job is `ci_url`, else CI_JOB_URL, else GitHub's run.
    pub fn for_run(
        var: &dyn Fn(&str) -> Option<String>,
        ttl: Option<&str>,
        ci_url: Option<&str>,
        cloud_user: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Ownership, String> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let expires = match ttl {
            Some(t) => {
                let span = parse_ttl(t).map_err(|e| format!("--ttl: {e}"))?;
                Some(now + time::Duration::try_from(span).map_err(|_| format!("--ttl `{t}` is too long"))?)
            }
            None => None,
        };
        let owner = var("PROVISION_OWNER")
            .or_else(|| var("GITLAB_USER_LOGIN").map(|u| format!("gitlab:{u}")))
            .or_else(|| var("GITHUB_ACTOR").map(|u| format!("github:{u}")))
            .or_else(|| cloud_user.map(str::to_string));
        let github_run = || {
            Some(format!(
                "{}/{}/actions/runs/{}",
                var("GITHUB_SERVER_URL")?,
                var("GITHUB_REPOSITORY")?,
                var("GITHUB_RUN_ID")?
            ))
        };
        let ci = ci_url.map(str::to_string).or_else(|| var("CI_JOB_URL")).or_else(github_run);
        Ok(Ownership { owner, expires, ci })
    }
}

/// Whether a tag is one of these facts (replaced, not added to, on a re-run).
pub fn is_ownership_tag(tag: &str) -> bool {
    [OWNER, EXPIRES, CI].iter().any(|p| tag.starts_with(p))
}

fn fit(prefix: &str, value: &str, max: usize) -> String {
    let room = max.saturating_sub(prefix.chars().count());
    let count = value.chars().count();
    if count <= room {
        return format!("{prefix}{value}");
    }
    let tail: String = value.chars().skip(count - room.saturating_sub(1)).collect();
    format!("{prefix}…{tail}")
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

/// `90s`, `30m`, `2h`, `7d`: a positive span.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 90s, 30m, 2h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d (as in 2h)")),
    };
    if n == 0 {
        return Err("a TTL must be more than 0".into());
    }
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("`{text}` is too long"))
}

/// A stack as `list` and `gc` see it.
#[derive(Debug, Clone, Serialize)]
pub struct StackSeen {
    pub name: String,
    pub id: String,
    pub status: String,
    pub tags: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
}

impl StackSeen {
    pub fn ours(&self) -> bool {
        self.tags.iter().any(|t| t == OUR_TAG)
    }
    pub fn ownership(&self) -> Ownership {
        Ownership::from_tags(&self.tags)
    }
}

/// A floating IP as `gc` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct FloatingIpSeen {
    pub id: String,
    pub address: String,
    pub tags: Vec<String>,
    pub attached: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
}

impl FloatingIpSeen {
    pub fn stack(&self) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix(STACK))
    }
    fn orphan_since(&self) -> Option<OffsetDateTime> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(ORPHAN_SINCE))
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }
}

/// What `gc` does with one thing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "why", rename_all = "snake_case")]
pub enum Verdict {
    Delete(String),
    /// A floating IP seen without its stack for the first time: marked,
    /// deleted by the next pass (or once older than the grace period).
    Mark(String),
    Keep(String),
}

/// The stacks `gc` deletes: provision's own that are failed or expired.
/// One in progress is left alone unless it has expired; one being deleted
/// is left to Heat.
pub fn judge_stack(s: &StackSeen, now: OffsetDateTime) -> Verdict {
    let own = s.ownership();
    let Some(status) = StackStatus::parse(&s.status) else {
        return Verdict::Keep(format!("status {:?} is not one this tool knows", s.status));
    };
    if status == StackStatus::new(Action::Delete, State::InProgress) {
        return Verdict::Keep("Heat is deleting it".into());
    }
    if let Some(e) = own.expires.filter(|_| own.expired(now)) {
        return Verdict::Delete(format!("expired at {}", rfc3339(e)));
    }
    if status.failed() {
        return Verdict::Delete(s.status.clone());
    }
    if !status.settled() {
        return Verdict::Keep(format!("{} and not expired", s.status));
    }
    Verdict::Keep(match own.expires {
        Some(e) => format!("{}, expires at {}", s.status, rfc3339(e)),
        None => format!("{}, no expiry", s.status),
    })
}

/// The floating IPs `gc` deletes: provision's own, whose stack no longer
/// exists, unattached, and either seen so by the previous pass or older
/// than `grace`. Ports and everything else belong to Heat.
pub fn judge_floating_ip(
    f: &FloatingIpSeen,
    stacks: &HashSet<String>,
    now: OffsetDateTime,
    grace: Duration,
) -> Verdict {
    let Some(stack) = f.stack() else {
        return Verdict::Keep("names no stack".into());
    };
    if stacks.contains(stack) {
        return Verdict::Keep(format!("its stack {stack} is there"));
    }
    if f.attached {
        return Verdict::Keep(format!("attached to a port, although its stack {stack} is gone"));
    }
    if let Some(since) = f.orphan_since() {
        return Verdict::Delete(format!("unattached, and its stack {stack} gone since {}", rfc3339(since)));
    }
    let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::MAX);
    if f.created.is_some_and(|c| now - c >= grace) {
        return Verdict::Delete(format!("unattached, its stack {stack} gone, and older than the grace period"));
    }
    Verdict::Mark(format!("unattached and its stack {stack} gone: deleted by the next pass"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    fn stack(status: &str, tags: &[&str]) -> StackSeen {
        StackSeen {
            name: "s".into(),
            id: "i".into(),
            status: status.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created: None,
        }
    }

    #[test]
    fn tags_round_trip_and_long_ci_urls_keep_their_end() {
        let o = Ownership {
            owner: Some("gitlab:ana".into()),
            expires: Some(at("2026-12-05T14:00:00Z")),
            ci: Some(format!("https://gitlab.example.com/{}/-/jobs/987654", "group/".repeat(12))),
        };
        let tags = o.tags(HEAT_TAG_MAX);
        assert!(tags.iter().all(|t| t.chars().count() <= HEAT_TAG_MAX), "{tags:?}");
        assert_eq!(tags[1], "provision-expires=2026-12-05T14:00:00Z");
        assert!(tags[2].starts_with("provision-ci=…") && tags[2].ends_with("/-/jobs/987654"), "{}", tags[2]);
        let back = Ownership::from_tags(&o.tags(NEUTRON_TAG_MAX));
        assert_eq!(back, o, "the full URL fits Neutron's 255");
        assert!(tags.iter().all(|t| is_ownership_tag(t)));
        assert!(!is_ownership_tag("provision") && !is_ownership_tag("team-a"));
    }

    #[test]
    fn a_rerun_keeps_the_stacks_facts_unless_given_new_ones() {
        let before = Ownership { owner: Some("ana".into()), expires: Some(at("2026-12-05T14:00:00Z")), ci: None };
        let now =
            Ownership { owner: Some("bo".into()), expires: Some(at("2026-12-06T00:00:00Z")), ci: Some("job".into()) };
        let merged = now.over(&before);
        assert_eq!(merged.owner.as_deref(), Some("ana"), "the maker stays the owner");
        assert_eq!(merged.expires, Some(at("2026-12-06T00:00:00Z")));
        assert_eq!(merged.ci.as_deref(), Some("job"));
    }

    #[test]
    fn a_runs_facts_come_from_flags_then_ci_variables_then_the_cloud_user() {
        let now = at("2026-12-05T12:00:00Z");
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let plain = Ownership::for_run(&env(&[]), None, None, Some("demo"), now).unwrap();
        assert_eq!(plain, Ownership { owner: Some("demo".into()), expires: None, ci: None });
        let gitlab = env(&[("GITLAB_USER_LOGIN", "ana"), ("CI_JOB_URL", "https://gl/p/-/jobs/7")]);
        let o = Ownership::for_run(&gitlab, Some("2h"), None, Some("demo"), now).unwrap();
        assert_eq!(o.owner.as_deref(), Some("gitlab:ana"));
        assert_eq!(o.expires, Some(at("2026-12-05T14:00:00Z")));
        assert_eq!(o.ci.as_deref(), Some("https://gl/p/-/jobs/7"));
        let github = env(&[
            ("GITHUB_ACTOR", "bo"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "org/repo"),
            ("GITHUB_RUN_ID", "42"),
            ("PROVISION_OWNER", "team-a"),
        ]);
        let o = Ownership::for_run(&github, None, None, None, now).unwrap();
        assert_eq!(o.owner.as_deref(), Some("team-a"));
        assert_eq!(o.ci.as_deref(), Some("https://github.com/org/repo/actions/runs/42"));
        let o = Ownership::for_run(&github, None, Some("https://ci/x"), None, now).unwrap();
        assert_eq!(o.ci.as_deref(), Some("https://ci/x"));
        assert!(Ownership::for_run(&env(&[]), Some("0s"), None, None, now).unwrap_err().starts_with("--ttl"));
    }

    #[test]
    fn ttls_are_positive_spans_with_a_unit() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_ttl("0h").unwrap_err().contains("more than 0"));
        assert!(parse_ttl("-1h").is_err());
        assert!(parse_ttl("2 hours").unwrap_err().contains("unit"));
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("99999999999999999d").is_err());
    }

    #[test]
    fn gc_deletes_failed_and_expired_stacks_and_leaves_live_ones() {
        let now = at("2026-12-05T12:00:00Z");
        let expired = "provision-expires=2026-12-05T11:00:00Z";
        let later = "provision-expires=2026-12-05T13:00:00Z";
        let d = |s: &StackSeen| matches!(judge_stack(s, now), Verdict::Delete(_));
        assert!(d(&stack("CREATE_FAILED", &["provision"])));
        assert!(d(&stack("DELETE_FAILED", &["provision"])));
        assert!(d(&stack("CREATE_COMPLETE", &["provision", expired])));
        assert!(d(&stack("CREATE_IN_PROGRESS", &["provision", expired])), "expired wins over in progress");
        assert!(!d(&stack("CREATE_IN_PROGRESS", &["provision"])));
        assert!(!d(&stack("CREATE_COMPLETE", &["provision", later])));
        assert!(!d(&stack("DELETE_IN_PROGRESS", &["provision", expired])));
        assert!(!d(&stack("UPDATE_COMPLETE", &["provision"])));
        assert_eq!(
            judge_stack(&stack("CREATE_COMPLETE", &["provision", later]), now),
            Verdict::Keep("CREATE_COMPLETE, expires at 2026-12-05T13:00:00Z".into())
        );
    }

    #[test]
    fn gc_deletes_a_floating_ip_only_unattached_without_its_stack_and_seen_twice_or_old() {
        let now = at("2026-12-05T12:00:00Z");
        let grace = Duration::from_secs(3600);
        let fip = |tags: &[&str], attached: bool, created: &str| FloatingIpSeen {
            id: "f".into(),
            address: "203.0.113.5".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attached,
            created: Some(at(created)),
        };
        let live: HashSet<String> = ["alive".to_string()].into();
        let judge = |f: &FloatingIpSeen| judge_floating_ip(f, &live, now, grace);
        let young = "2026-12-05T11:59:00Z";
        assert!(matches!(judge(&fip(&["provision", "provision-stack=alive"], false, young)), Verdict::Keep(_)));
        assert!(matches!(judge(&fip(&["provision", "provision-stack=gone"], true, young)), Verdict::Keep(_)));
        assert!(matches!(judge(&fip(&["provision", "provision-stack=gone"], false, young)), Verdict::Mark(_)));
        let marked = ["provision", "provision-stack=gone", "provision-orphan-since=2026-12-05T11:59:30Z"];
        assert!(matches!(judge(&fip(&marked, false, young)), Verdict::Delete(_)));
        assert!(matches!(
            judge(&fip(&["provision", "provision-stack=gone"], false, "2026-12-05T10:00:00Z")),
            Verdict::Delete(_)
        ));
        assert!(matches!(judge(&fip(&["provision"], false, "2026-01-01T00:00:00Z")), Verdict::Keep(_)));
    }
}

//! The stacks provision made in a project, all at once: what `list` shows
//! and what `gc` acts on. The decisions are [`super::ownership`]'s plain
//! functions; here are the requests around them.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api::{heat, neutron};
use super::cloud::{Cloud, CloudError};
use super::events::{HeatStack, StackRef, entries};
use super::ownership::{self, FloatingIpSeen, StackSeen, Verdict};
use super::{OUR_TAG, StackError, Watch};
use crate::poll::{Pause, Stop, Try, retry};

/// How a floating IP provision allocated describes itself; also how one
/// is known as ours when a run was killed before it could tag it.
pub const FIP_DESCRIPTION: &str = "provision: manager of stack ";

/// Heat's and Neutron's times; Heat's carry no zone and are UTC.
fn parse_time(s: Option<&str>) -> Option<OffsetDateTime> {
    let s = s?;
    let s = if s.ends_with('Z') || s.contains('+') { s.to_string() } else { format!("{s}Z") };
    OffsetDateTime::parse(&s, &Rfc3339).ok()
}

/// Heat's list of the stacks tagged as provision's.
pub fn stacks_from(v: &Value) -> Vec<StackSeen> {
    entries::<HeatStack>(v, "stacks")
        .into_iter()
        .map(|s| StackSeen {
            created: parse_time(s.creation_time.as_deref()),
            name: s.stack_name.unwrap_or_default(),
            id: s.id,
            status: s.stack_status,
            tags: s.tags,
        })
        .filter(StackSeen::ours)
        .collect()
}

/// What this tool reads of one of Neutron's floating IPs.
#[derive(Debug, Deserialize)]
struct NeutronFloatingIp {
    id: String,
    #[serde(default)]
    floating_ip_address: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "super::events::tags")]
    tags: Vec<String>,
    /// Set while the address is on a port (a server's).
    #[serde(default)]
    port_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// Neutron's floating IPs that provision allocated: tagged, or (a run
/// killed between the allocation and the tagging) described as such.
pub fn floating_ips_from(v: &Value) -> Vec<FloatingIpSeen> {
    entries::<NeutronFloatingIp>(v, "floatingips")
        .into_iter()
        .filter_map(|f| {
            let mut tags = f.tags;
            if !tags.iter().any(|t| t == OUR_TAG) {
                let stack = f.description.as_deref()?.strip_prefix(FIP_DESCRIPTION)?;
                tags = vec![OUR_TAG.to_string(), format!("{}{stack}", ownership::STACK)];
            }
            Some(FloatingIpSeen {
                id: f.id,
                address: f.floating_ip_address,
                tags,
                attached: f.port_id.is_some(),
                created: parse_time(f.created_at.as_deref()),
            })
        })
        .collect()
}

/// provision's stacks and floating IPs in the project, as they are now.
pub async fn survey(cloud: &Cloud) -> Result<(Vec<StackSeen>, Vec<FloatingIpSeen>), CloudError> {
    let (list, ips) = (heat::list_tagged(OUR_TAG), neutron::floating_ips());
    let (stacks, fips) = tokio::join!(cloud.send(&list), cloud.send(&ips));
    Ok((stacks_from(&stacks?), floating_ips_from(&fips?)))
}

/// The tags a floating IP of `stack` carries.
pub fn floating_ip_tags(stack: &str, owner: &ownership::Ownership) -> Vec<String> {
    let mut tags = vec![OUR_TAG.to_string(), format!("{}{stack}", ownership::STACK)];
    tags.extend(owner.tags(ownership::NEUTRON_TAG_MAX));
    tags
}

/// One thing `gc` looked at, what it decided and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub kind: &'static str,
    pub name: String,
    pub id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// With `--yes`: what happened (`deleted`, `marked`, or the error).
    pub result: Option<String>,
}

/// What `gc` decides about everything it sees: stacks first; the floating
/// IPs of the stacks it deletes go with them.
pub fn plan(
    stacks: &[StackSeen],
    fips: &[FloatingIpSeen],
    every_stack_name: &HashSet<String>,
    now: OffsetDateTime,
    grace: Duration,
) -> Vec<Judged> {
    let mut out = Vec::new();
    let mut going = HashSet::new();
    for s in stacks {
        let verdict = ownership::judge_stack(s, now);
        if matches!(verdict, Verdict::Delete(_)) {
            going.insert(s.name.clone());
        }
        out.push(Judged { kind: "stack", name: s.name.clone(), id: s.id.clone(), verdict, result: None });
    }
    for f in fips {
        let verdict = match f.stack() {
            Some(stack) if going.contains(stack) => Verdict::Delete(format!("its stack {stack} is deleted now")),
            _ => ownership::judge_floating_ip(f, every_stack_name, now, grace),
        };
        out.push(Judged { kind: "floating_ip", name: f.address.clone(), id: f.id.clone(), verdict, result: None });
    }
    out
}

/// Carries out a plan: deletes the stacks, eight at a time (a
/// `DELETE_FAILED` is tried again with backoff), then the floating IPs, then marks the ones seen
/// without their stack for the first time.
pub async fn carry_out(
    cloud: &Cloud,
    plan: &mut [Judged],
    fips: &[FloatingIpSeen],
    deadline: Duration,
    watch: &dyn Watch,
) {
    use futures::StreamExt;
    const TRIES: u32 = 3;
    // Heat deletes them side by side; a few at a time keeps its engine
    // and the polling light.
    const AT_ONCE: usize = 8;
    // A delete that failed (a port still in use, a busy engine) is asked
    // for again, 5 s and then 10 s later; the last reason is the result.
    let delete = |stack: StackRef| async move {
        let tried = retry(
            TRIES,
            Pause::Growing(Duration::from_secs(5)),
            |_, _| {},
            |_| async {
                match super::destroy(cloud, stack.clone(), deadline, watch).await {
                    Ok(o) if o.ok => Try::<(), std::convert::Infallible>::Done(()),
                    Ok(o) => Try::Again(format!("{}: {}", o.status, super::events::one_line(&o.reason, 200))),
                    Err(e) => Try::Again(format!("error: {e}")),
                }
            },
        );
        match tried.await {
            Ok(()) => "deleted".to_string(),
            Err(Stop::GaveUp { last, .. }) => last,
            Err(Stop::Failed(never)) => match never {},
        }
    };
    let doomed: Vec<usize> =
        (0..plan.len()).filter(|&i| plan[i].kind == "stack" && matches!(plan[i].verdict, Verdict::Delete(_))).collect();
    let results: Vec<(usize, String)> = futures::stream::iter(doomed)
        .map(|i| {
            let stack = StackRef { name: plan[i].name.clone(), id: plan[i].id.clone() };
            async move { (i, delete(stack).await) }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for (i, result) in results {
        plan[i].result = Some(result);
    }
    let failed_stacks: HashSet<String> = plan
        .iter()
        .filter(|j| j.kind == "stack" && j.result.as_deref().is_some_and(|r| r != "deleted"))
        .map(|j| j.name.clone())
        .collect();
    for j in plan.iter_mut().filter(|j| j.kind == "floating_ip") {
        let Some(f) = fips.iter().find(|f| f.id == j.id) else { continue };
        j.result = match &j.verdict {
            // Its stack could not be deleted: the address may still be in use.
            Verdict::Delete(_) if f.stack().is_some_and(|s| failed_stacks.contains(s)) => {
                Some("kept: its stack could not be deleted".into())
            }
            Verdict::Delete(_) => Some(match cloud.send_opt(&neutron::delete_floating_ip(&f.id)).await {
                Ok(_) => "deleted".into(),
                Err(e) => format!("error: {e}"),
            }),
            Verdict::Mark(_) => {
                let mut tags = f.tags.clone();
                tags.push(format!("{}{}", ownership::ORPHAN_SINCE, ownership::rfc3339(OffsetDateTime::now_utc())));
                Some(match cloud.send(&neutron::set_tags(&f.id, &tags)).await {
                    Ok(_) => "marked".into(),
                    Err(e) => format!("error: {e}"),
                })
            }
            Verdict::Keep(_) => None,
        };
    }
}

/// Every stack name in the project, provision's or not: a floating IP
/// whose stack exists under any owner is not an orphan.
pub async fn all_stack_names(cloud: &Cloud) -> Result<HashSet<String>, StackError> {
    Ok(super::stack_names(cloud).await?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ours_are_told_by_tag_or_by_description() {
        let v = json!({"floatingips": [
            {"id": "a", "floating_ip_address": "203.0.113.1", "tags": ["provision", "provision-stack=s1"], "port_id": null,
             "created_at": "2026-12-05T10:00:00Z", "description": ""},
            {"id": "b", "floating_ip_address": "203.0.113.2", "tags": [], "port_id": "p",
             "description": "provision: manager of stack s2"},
            {"id": "c", "floating_ip_address": "203.0.113.3", "tags": ["team"], "port_id": null, "description": "mine"}
        ]});
        let seen = floating_ips_from(&v);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].stack(), Some("s1"));
        assert!(!seen[0].attached && seen[0].created.is_some());
        assert_eq!(seen[1].stack(), Some("s2"));
        assert!(seen[1].attached);
        let stacks = stacks_from(&json!({"stacks": [
            {"stack_name": "x", "id": "1", "stack_status": "CREATE_FAILED", "tags": ["provision"]},
            {"stack_name": "y", "id": "2", "stack_status": "CREATE_COMPLETE", "tags": null}
        ]}));
        assert_eq!(stacks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["x"]);
        // One entry this tool cannot read is left out, not the list; Heat's
        // times carry no zone and are UTC.
        let stacks = stacks_from(&json!({"stacks": [
            {"stack_name": "z", "id": 7, "tags": ["provision"]},
            {"stack_name": "w", "id": "3", "stack_status": "CREATE_COMPLETE", "tags": "provision,ci",
             "creation_time": "2026-12-05T10:00:00"}
        ]}));
        assert_eq!(stacks.len(), 1);
        assert_eq!(stacks[0].created, OffsetDateTime::parse("2026-12-05T10:00:00Z", &Rfc3339).ok());
    }

    #[test]
    fn a_deleted_stacks_floating_ip_goes_with_it_and_others_wait_their_turn() {
        let now = OffsetDateTime::parse("2026-12-05T12:00:00Z", &Rfc3339).unwrap();
        let stack = |name: &str, status: &str| StackSeen {
            name: name.into(),
            id: format!("id-{name}"),
            status: status.into(),
            tags: vec!["provision".into()],
            created: None,
        };
        let fip = |id: &str, stack: &str| FloatingIpSeen {
            id: id.into(),
            address: format!("203.0.113.{}", id.len()),
            tags: vec!["provision".into(), format!("provision-stack={stack}")],
            attached: true,
            created: Some(now),
        };
        let stacks = [stack("dead", "CREATE_FAILED"), stack("live", "CREATE_COMPLETE")];
        let names: HashSet<String> = ["dead".into(), "live".into(), "foreign".into()].into();
        let fips = [fip("f1", "dead"), fip("f22", "live"), fip("f333", "foreign")];
        let p = plan(&stacks, &fips, &names, now, Duration::from_secs(3600));
        let verdict = |id: &str| p.iter().find(|j| j.id == id).unwrap().verdict.clone();
        assert!(matches!(verdict("id-dead"), Verdict::Delete(_)));
        assert!(matches!(verdict("id-live"), Verdict::Keep(_)));
        assert!(matches!(verdict("f1"), Verdict::Delete(_)), "attached now, freed by its stack's deletion");
        assert!(matches!(verdict("f22"), Verdict::Keep(_)));
        assert!(matches!(verdict("f333"), Verdict::Keep(_)), "a stack of that name exists, whoever made it");
    }
}

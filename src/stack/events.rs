//! Reading what Heat says about a stack, as plain functions: events (and
//! which of them is the stack's own), failed resources with their reasons,
//! outputs. The wait loop in [`super`] feeds these with Heat's JSON.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::{StackStatus, State};

/// A stack as Heat names it: `stacks/NAME/ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackRef {
    pub name: String,
    pub id: String,
}

impl StackRef {
    /// From the `stack` object of a show, or the `links`/`id` of a create.
    pub fn from_json(name: &str, v: &Value) -> Option<StackRef> {
        let s = HeatStack::read(v)?;
        (!s.id.is_empty()).then(|| StackRef { name: s.stack_name.unwrap_or_else(|| name.to_string()), id: s.id })
    }
}

/// What this tool reads of Heat's `stack` object (a show, or the answer
/// to a create); the rest of it is left unread.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeatStack {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub stack_name: Option<String>,
    #[serde(default)]
    pub stack_status: String,
    #[serde(default)]
    pub stack_status_reason: Option<String>,
    /// Absent until the stack is complete; an output Heat could not
    /// resolve has no value.
    #[serde(default)]
    pub outputs: Option<Vec<HeatOutput>>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    /// In Heat's time format, without a zone (UTC).
    #[serde(default)]
    pub creation_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeatOutput {
    pub output_key: String,
    #[serde(default)]
    pub output_value: Value,
}

/// A resource of a `resources?nested_depth=N` listing.
#[derive(Debug, Clone, Deserialize)]
pub struct HeatResource {
    #[serde(default)]
    pub resource_name: String,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub resource_status: String,
    #[serde(default)]
    pub resource_status_reason: Option<String>,
    /// The nested stack's resource it is in, when not the top stack.
    #[serde(default)]
    pub parent_resource: Option<String>,
}

impl HeatStack {
    /// The `stack` object of an answer (or the answer itself, when it is
    /// one); `None` when it is not a stack.
    pub fn read(v: &Value) -> Option<HeatStack> {
        serde_json::from_value(v.get("stack").unwrap_or(v).clone()).ok()
    }
}

/// The entries of a list answer (`{"resources": [...]}`), each read on its
/// own: one this tool cannot read is left out, not the whole list.
pub(crate) fn entries<T: serde::de::DeserializeOwned>(v: &Value, list: &str) -> Vec<T> {
    let all = v.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    all.iter().filter_map(|e| serde_json::from_value(e.clone()).ok()).collect()
}

/// Heat gives tags as a list, a comma-joined string (older releases) or
/// null for none.
pub(crate) fn tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(t) => t.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub resource_name: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_status: String,
    #[serde(default)]
    pub resource_status_reason: Option<String>,
    #[serde(default)]
    pub event_time: String,
    /// Heat links each event to the (nested) stack its resource is in.
    #[serde(default, skip_serializing)]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub rel: String,
}

impl Event {
    /// Where the resource's action is; `None` for a status Heat may add.
    pub fn state(&self) -> Option<State> {
        StackStatus::parse(&self.resource_status).map(|s| s.state)
    }

    /// The resource across nested stacks: every worker has a `wait`, and
    /// each is its own.
    fn key(&self) -> String {
        let scope = self.links.iter().find(|l| l.rel == "stack").map_or("", |l| l.href.as_str());
        format!("{scope}#{}", self.resource_name)
    }

    pub fn is_of_stack(&self, stack: &StackRef) -> bool {
        self.physical_resource_id.as_deref() == Some(stack.id.as_str()) && self.resource_name == stack.name
    }

    /// One line for the operator: `12:01:07 manager_port CREATE_COMPLETE`.
    pub fn line(&self) -> String {
        let time = self.event_time.split('T').nth(1).unwrap_or(&self.event_time).trim_end_matches('Z');
        let reason = match self.resource_status_reason.as_deref() {
            Some(r) if !r.is_empty() && r != "state changed" => format!("  {}", one_line(r, 160)),
            _ => String::new(),
        };
        format!("{time} {:<28} {}{reason}", self.resource_name, self.resource_status)
    }
}

pub fn parse_events(v: &Value) -> Vec<Event> {
    v.get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| serde_json::from_value(e.clone()).ok()).collect())
        .unwrap_or_default()
}

/// Follows the event stream of one stack operation: remembers the marker
/// so each poll asks only for what is new, drops what it has already
/// shown, and counts resources finished.
#[derive(Debug)]
pub struct Follow {
    stack: StackRef,
    pub marker: Option<String>,
    seen: HashSet<String>,
    finished: HashSet<String>,
    /// Resources started and not yet finished, by key, with their names.
    pending: BTreeMap<String, String>,
    first_time: Option<String>,
    last_time: Option<String>,
    pub events: usize,
    /// The status in the stack's own latest event.
    pub stack_status: Option<String>,
}

impl Follow {
    pub fn new(stack: StackRef, after: Option<String>) -> Follow {
        Follow {
            stack,
            marker: after,
            seen: HashSet::new(),
            finished: HashSet::new(),
            pending: BTreeMap::new(),
            first_time: None,
            last_time: None,
            events: 0,
            stack_status: None,
        }
    }

    /// The new events of a poll, in order. The second value says the stack
    /// itself changed state: time to ask Heat for its status.
    pub fn take(&mut self, batch: Vec<Event>) -> (Vec<Event>, bool) {
        let mut fresh = Vec::new();
        let mut stack_moved = false;
        for e in batch {
            if !self.seen.insert(e.id.clone()) {
                continue;
            }
            self.marker = Some(e.id.clone());
            if e.is_of_stack(&self.stack) {
                stack_moved = true;
                self.stack_status = Some(e.resource_status.clone());
            } else if e.state() == Some(State::InProgress) {
                self.pending.insert(e.key(), e.resource_name.clone());
            } else {
                self.pending.remove(&e.key());
                if e.state() == Some(State::Complete) {
                    self.finished.insert(e.key());
                }
            }
            self.first_time.get_or_insert_with(|| e.event_time.clone());
            self.last_time = Some(e.event_time.clone());
            self.events += 1;
            fresh.push(e);
        }
        (fresh, stack_moved)
    }

    pub fn resources_finished(&self) -> usize {
        self.finished.len()
    }

    /// The nodes' ready signals still awaited: the manager's, and how many
    /// workers'. Only these can take long; the rest is the cloud's work.
    pub fn signals_awaited(&self) -> Signals {
        let mut s = Signals::default();
        for name in self.pending.values() {
            match name.as_str() {
                "manager_wait" => s.manager = true,
                "wait" => s.workers += 1,
                _ => {}
            }
        }
        s
    }

    /// Heat's own time for the operation: first to last event it reported.
    pub fn heat_seconds(&self) -> Option<f64> {
        let first = parse_time(self.first_time.as_deref()?)?;
        let last = parse_time(self.last_time.as_deref()?)?;
        Some((last - first).as_seconds_f64())
    }
}

/// Which nodes a stack operation is waiting to hear from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    pub manager: bool,
    pub workers: usize,
}

impl Signals {
    pub fn any(&self) -> bool {
        self.manager || self.workers > 0
    }

    /// `the manager's and 2 workers' ready signals`.
    pub fn describe(&self) -> String {
        let workers = match self.workers {
            0 => None,
            1 => Some("1 worker's".to_string()),
            n => Some(format!("{n} workers'")),
        };
        let who = match (self.manager, workers) {
            (true, Some(w)) => format!("the manager's and {w}"),
            (true, None) => "the manager's".to_string(),
            (false, Some(w)) => w,
            (false, None) => return String::new(),
        };
        let plural = if self.workers + usize::from(self.manager) > 1 { "signals" } else { "signal" };
        format!("{who} ready {plural}")
    }
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    let s = if s.ends_with('Z') || s.contains('+') { s.to_string() } else { format!("{s}Z") };
    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()
}

/// How long to sleep before the next poll: short while things happen, up to
/// a second when idle, so the end is seen within about a second.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    now: Duration,
}

impl Pace {
    pub const FAST: Duration = Duration::from_millis(250);
    pub const SLOW: Duration = Duration::from_millis(1000);

    pub fn new() -> Pace {
        Pace { now: Pace::FAST }
    }

    pub fn next(&mut self, something_happened: bool) -> Duration {
        self.now = if something_happened { Pace::FAST } else { (self.now * 2).min(Pace::SLOW) };
        self.now
    }
}

impl Default for Pace {
    fn default() -> Pace {
        Pace::new()
    }
}

/// A resource that failed, with Heat's reason: for a node's wait condition
/// that reason is what the node signalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub resource: String,
    pub kind: String,
    pub status: String,
    pub reason: String,
    /// The nested stack it is in, when not the top one.
    pub parent: Option<String>,
}

/// Failures that say the same thing (same place, type and reason), as one:
/// a 100-worker stack that timed out is one line, not a hundred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup<'a> {
    pub first: &'a Failure,
    pub resources: Vec<&'a str>,
}

/// Groups in the order their first member came.
pub fn group_failures(list: &[Failure]) -> Vec<FailureGroup<'_>> {
    let mut groups: Vec<FailureGroup> = Vec::new();
    for f in list {
        let same =
            |g: &&mut FailureGroup| g.first.parent == f.parent && g.first.kind == f.kind && g.first.reason == f.reason;
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.resources.push(&f.resource),
            None => groups.push(FailureGroup { first: f, resources: vec![&f.resource] }),
        }
    }
    groups
}

/// The failed resources of a `resources?nested_depth=N` listing, innermost
/// first: the group or nested stack that failed because of them comes after.
pub fn failures(v: &Value) -> Vec<Failure> {
    let mut out: Vec<(usize, Failure)> = entries::<HeatResource>(v, "resources")
        .into_iter()
        .filter(|r| StackStatus::parse(&r.resource_status).is_some_and(StackStatus::failed))
        .map(|r| {
            let depth = usize::from(r.parent_resource.is_some());
            (
                depth,
                Failure {
                    resource: r.resource_name,
                    kind: r.resource_type,
                    status: r.resource_status,
                    reason: r.resource_status_reason.unwrap_or_default(),
                    parent: r.parent_resource,
                },
            )
        })
        .collect();
    // Deepest (the cause) first, then by name for a stable order.
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.resource.cmp(&b.1.resource)));
    out.into_iter().map(|(_, f)| f).collect()
}

/// What a node said when it signalled FAILURE, out of Heat's wrapping
/// (`WaitConditionFailure: resources.manager_wait: <reason>`).
pub fn node_reason(f: &Failure) -> Option<String> {
    if !f.kind.contains("WaitCondition") {
        return None;
    }
    let r = f.reason.strip_prefix("WaitConditionFailure: ").unwrap_or(&f.reason);
    let r = match r.split_once(": ") {
        Some((head, rest)) if head.starts_with("resources.") => rest,
        _ => r,
    };
    Some(r.trim().to_string())
}

/// The stack's outputs as key → value.
pub fn outputs(stack: &Value) -> BTreeMap<String, Value> {
    let outputs = HeatStack::read(stack).and_then(|s| s.outputs).unwrap_or_default();
    outputs.into_iter().map(|o| (o.output_key, o.output_value)).collect()
}

/// A shown stack's status and Heat's reason for it. A status this tool
/// cannot read is an error, not a guess.
pub fn status(stack: &Value) -> Result<(StackStatus, String), super::StackError> {
    let s = HeatStack::read(stack).unwrap_or_default();
    let text = s.stack_status;
    let status = StackStatus::parse(&text).ok_or_else(|| {
        super::StackError::Unexpected(format!(
            "Heat reports the stack's status as {text:?}, which this tool does not know"
        ))
    })?;
    Ok((status, s.stack_status_reason.unwrap_or_default()))
}

pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max { format!("{}…", flat.chars().take(max).collect::<String>()) } else { flat }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_failures_are_one_group_and_distinct_ones_stay_apart() {
        let f = |r: &str, reason: &str| Failure {
            resource: r.into(),
            kind: "OS::Heat::WaitCondition".into(),
            status: "CREATE_FAILED".into(),
            reason: reason.into(),
            parent: Some("workers".into()),
        };
        let mut list: Vec<Failure> = (0..62).map(|i| f(&i.to_string(), "Timed out")).collect();
        list.insert(5, f("manager_wait", "the node said: docker-registry.service failed"));
        let groups = group_failures(&list);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].resources.len(), 62);
        assert_eq!(groups[0].resources[..3], ["0", "1", "2"]);
        assert_eq!(groups[1].resources, ["manager_wait"]);
        let mut elsewhere = f("0", "Timed out");
        elsewhere.parent = None;
        assert_eq!(group_failures(&[f("0", "Timed out"), elsewhere]).len(), 2);
    }
    use serde_json::json;

    fn ev(id: &str, name: &str, phys: &str, status: &str, t: &str) -> Event {
        Event {
            id: id.into(),
            resource_name: name.into(),
            physical_resource_id: Some(phys.into()),
            resource_status: status.into(),
            resource_status_reason: Some("state changed".into()),
            event_time: t.into(),
            links: Vec::new(),
        }
    }

    /// An event of a resource in the nested stack `scope`.
    fn nested(id: &str, scope: &str, name: &str, status: &str) -> Event {
        let mut e = ev(id, name, "", status, "2026-11-23T10:01:00Z");
        e.links = vec![Link { href: format!("http://heat/v1/p/stacks/{scope}/x"), rel: "stack".into() }];
        e
    }

    #[test]
    fn the_signals_awaited_are_counted_per_node_across_nested_stacks() {
        let mut f = Follow::new(StackRef { name: "reg".into(), id: "S".into() }, None);
        f.take(vec![
            ev("1", "manager_wait", "", "CREATE_IN_PROGRESS", "2026-11-23T10:00:00Z"),
            nested("2", "reg-workers-0", "wait", "CREATE_IN_PROGRESS"),
            nested("3", "reg-workers-1", "wait", "CREATE_IN_PROGRESS"),
            nested("4", "reg-workers-1", "server", "CREATE_IN_PROGRESS"),
        ]);
        assert_eq!(f.signals_awaited(), Signals { manager: true, workers: 2 });
        assert_eq!(f.signals_awaited().describe(), "the manager's and 2 workers' ready signals");
        f.take(vec![
            nested("5", "reg-workers-0", "wait", "CREATE_COMPLETE"),
            ev("6", "manager_wait", "", "CREATE_FAILED", "2026-11-23T10:02:00Z"),
        ]);
        assert_eq!(f.signals_awaited(), Signals { manager: false, workers: 1 });
        assert_eq!(f.signals_awaited().describe(), "1 worker's ready signal");
        f.take(vec![nested("7", "reg-workers-1", "wait", "CREATE_COMPLETE")]);
        assert!(!f.signals_awaited().any());
        // Two workers' `wait` are two resources done, not one.
        assert_eq!(f.resources_finished(), 2);
    }

    #[test]
    fn follow_moves_the_marker_drops_repeats_and_sees_the_stack_event() {
        let stack = StackRef { name: "reg".into(), id: "S".into() };
        let mut f = Follow::new(stack, None);
        let (fresh, moved) = f.take(vec![
            ev("1", "reg", "S", "CREATE_IN_PROGRESS", "2026-11-23T10:00:00Z"),
            ev("2", "manager_port", "p", "CREATE_COMPLETE", "2026-11-23T10:00:03Z"),
        ]);
        assert_eq!(fresh.len(), 2);
        assert!(moved);
        assert_eq!(f.marker.as_deref(), Some("2"));
        assert_eq!(f.stack_status.as_deref(), Some("CREATE_IN_PROGRESS"));
        let (fresh, moved) = f.take(vec![
            ev("2", "manager_port", "p", "CREATE_COMPLETE", "2026-11-23T10:00:03Z"),
            ev("3", "manager", "m", "CREATE_COMPLETE", "2026-11-23T10:00:41Z"),
        ]);
        assert_eq!(fresh.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["3"]);
        assert!(!moved);
        assert_eq!(f.resources_finished(), 2);
        assert_eq!(f.heat_seconds(), Some(41.0));
        // A nested resource named like the stack is not the stack.
        let (_, moved) = f.take(vec![ev("4", "reg", "other", "CREATE_COMPLETE", "2026-11-23T10:00:42Z")]);
        assert!(!moved);
    }

    #[test]
    fn pace_speeds_up_on_events_and_never_sleeps_past_a_second() {
        let mut p = Pace::new();
        let idle: Vec<_> = (0..6).map(|_| p.next(false)).collect();
        assert_eq!(idle.last(), Some(&Pace::SLOW));
        assert!(idle.iter().all(|d| *d <= Pace::SLOW));
        assert_eq!(p.next(true), Pace::FAST);
    }

    #[test]
    fn failures_put_the_cause_first_and_unwrap_the_node_reason() {
        let v = json!({"resources": [
            {"resource_name": "workers", "resource_type": "OS::Heat::ResourceGroup", "resource_status": "CREATE_FAILED",
             "resource_status_reason": "WaitConditionFailure: resources.workers.resources[0]..."},
            {"resource_name": "manager_port", "resource_type": "OS::Neutron::Port", "resource_status": "CREATE_COMPLETE"},
            {"resource_name": "wait", "resource_type": "OS::Heat::WaitCondition", "resource_status": "CREATE_FAILED",
             "parent_resource": "0",
             "resource_status_reason": "WaitConditionFailure: resources.wait: docker.service failed: start timed out"},
            // One entry this tool cannot read costs that entry only.
            {"resource_name": 5, "resource_status": "CREATE_FAILED"}
        ]});
        let f = failures(&v);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].resource, "wait");
        assert_eq!(node_reason(&f[0]).as_deref(), Some("docker.service failed: start timed out"));
        assert_eq!(node_reason(&f[1]), None);
    }

    #[test]
    fn outputs_and_status_read_a_show() {
        let v = json!({"stack": {"stack_status": "CREATE_COMPLETE", "stack_status_reason": "done",
            "outputs": [{"output_key": "registry", "output_value": "reg.example.org:5000"}]}});
        assert_eq!(outputs(&v)["registry"], "reg.example.org:5000");
        assert_eq!(status(&v).unwrap().0.to_string(), "CREATE_COMPLETE");
        assert_eq!(status(&v).unwrap().1, "done");
        let odd = json!({"stack": {"stack_status": "MIGRATE_COMPLETE"}});
        assert!(status(&odd).unwrap_err().to_string().contains("\"MIGRATE_COMPLETE\", which this tool does not know"));
    }

    #[test]
    fn event_lines_are_short_and_single() {
        let mut e = ev("1", "manager", "m", "CREATE_FAILED", "2026-11-23T10:00:41Z");
        e.resource_status_reason = Some("line one\nline two".into());
        assert_eq!(e.line(), format!("10:00:41 {:<28} CREATE_FAILED  line one line two", "manager"));
    }

    /// A show answer as Heat gives it (trimmed): what is read is typed,
    /// the rest ignored, and an output Heat could not resolve is null.
    #[test]
    fn a_shown_stack_is_read_into_its_type() {
        let shown = serde_json::json!({"stack": {
            "id": "b3c1", "stack_name": "web", "stack_status": "UPDATE_FAILED",
            "stack_status_reason": "Resource UPDATE failed: x", "parameters": {"OS::stack_id": "b3c1"},
            "links": [{"href": "http://h/v1/p/stacks/web/b3c1", "rel": "self"}], "tags": ["provision", "ci"],
            "outputs": [
                {"output_key": "registry", "output_value": "web.example.com:5000", "description": "x"},
                {"output_key": "worker_names", "output_value": null, "output_error": "not ready"}
            ],
            "timeout_mins": 60, "disable_rollback": true}});
        let s = HeatStack::read(&shown).unwrap();
        assert_eq!((s.id.as_str(), s.stack_name.as_deref(), s.tags.len()), ("b3c1", Some("web"), 2));
        let (shown_status, reason) = status(&shown).unwrap();
        assert_eq!((shown_status.to_string(), reason.as_str()), ("UPDATE_FAILED".into(), "Resource UPDATE failed: x"));
        let o = outputs(&shown);
        assert_eq!(o["registry"], "web.example.com:5000");
        assert_eq!(o["worker_names"], Value::Null);
        assert_eq!(StackRef::from_json("ignored", &shown).unwrap(), StackRef { name: "web".into(), id: "b3c1".into() });
        // A create's answer: an id and links, no name.
        let created = serde_json::json!({"stack": {"id": "77", "links": []}});
        assert_eq!(StackRef::from_json("new", &created).unwrap(), StackRef { name: "new".into(), id: "77".into() });
        // Not a stack at all, or a status this tool does not know.
        assert!(StackRef::from_json("x", &serde_json::json!({"error": {"code": 404}})).is_none());
        assert!(status(&serde_json::json!({"stack": {"stack_status": "WEIRD_STATE"}})).is_err());
        assert!(outputs(&serde_json::json!({"stack": {"id": "1"}})).is_empty(), "no outputs before it completes");
    }
}

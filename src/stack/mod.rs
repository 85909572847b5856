//! **Stage 3 of 4: stack.** Takes the [`Params`], the rendered
//! [`Bundle`](crate::bundle::Bundle) and a logged-in [`Cloud`], and gives a
//! Heat stack, created or converged and waited on, as an [`Outcome`]: its
//! status, outputs, and for a failure the failed resources with Heat's
//! reasons. Also the steps around it: checking the input against the cloud
//! before anything is made, the manager's floating IP (allocated before the
//! certificates, so they can name it), and removal.

pub mod api;
pub mod cloud;
pub mod events;
pub mod fleet;
pub mod ownership;
pub mod quota;
pub mod status;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::params::{InputError, Network, Params, Problem};
use crate::state::{FloatingIp, Mode, StateDir, StateError};
use api::{StackBody, heat, lookup, neutron};
pub use cloud::{Cloud, CloudError};
pub use events::{Event, Failure, StackRef};
use events::{Follow, Pace};
pub use status::{Action, RunAction, StackStatus, State};

/// A create or update is sent with a token that has at least this long to
/// live (Heat works with it; see [`Cloud::fresh_token`]).
const TOKEN_MARGIN: Duration = Duration::from_secs(600);

use crate::state::layout::FLOATING_IP as FLOATING_IP_FILE;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
    /// The environment files name something the cloud does not have.
    #[error(transparent)]
    Input(InputError),
    #[error("Heat did not accept the rendered template: {0}")]
    Invalid(String),
    #[error("stack {name} is {status}; run again once the delete has ended (`provision status --watch` follows it)")]
    Busy { name: String, status: String },
    #[error("gave up waiting after {waited:?}; stack {name} is still {status} in Heat")]
    Timeout { name: String, status: String, waited: Duration },
    #[error(transparent)]
    Quota(quota::QuotaError),
    #[error("{0}")]
    Unexpected(String),
}

/// What the operator watching a wait is shown. The command line draws it;
/// tests and JSON runs can ignore it.
pub trait Watch {
    fn event(&self, e: &Event);
    fn progress(&self, now: &Snapshot);
}

/// Where a stack operation is, between events.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub status: &'a str,
    pub resources_finished: usize,
    /// The nodes whose ready signal Heat still waits for.
    pub signals: events::Signals,
    pub elapsed: Duration,
}

/// The result of a create, update or delete, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub stack: StackRef,
    pub action: RunAction,
    pub status: StackStatus,
    pub reason: String,
    pub ok: bool,
    /// What this run asked Heat to change (empty: nothing to do).
    pub changes: Vec<String>,
    pub outputs: BTreeMap<String, Value>,
    pub failures: Vec<Failure>,
    pub events: usize,
    /// First to last event, as Heat timed them.
    pub heat_seconds: Option<f64>,
    /// The stack's tags, and what they say of its owner and expiry.
    pub tags: Vec<String>,
    pub ownership: ownership::Ownership,
}

/// The stack by name, if Heat has one.
pub async fn find(cloud: &Cloud, name: &str) -> Result<Option<(StackRef, Value)>, CloudError> {
    Ok(cloud.send_opt(&heat::find(name)).await?.and_then(|v| StackRef::from_json(name, &v).map(|r| (r, v))))
}

/// The tag on every stack provision makes, so that `destroy` can tell its
/// own stacks from the others in the project.
pub const OUR_TAG: &str = "provision";

/// The tags a create or update sends: ours first, then who owns the stack
/// until when, then the operator's (whose look-alikes of ours are dropped).
pub fn tags_with_ours(given: &[String], owner: &ownership::Ownership) -> Vec<String> {
    let mut tags = vec![OUR_TAG.to_string()];
    tags.extend(owner.tags(ownership::HEAT_TAG_MAX));
    tags.extend(given.iter().filter(|t| *t != OUR_TAG && !ownership::is_ownership_tag(t)).cloned());
    tags
}

/// The tags of a shown stack. Heat gives a list, or null for none.
pub fn stack_tags(shown: &Value) -> Vec<String> {
    events::HeatStack::read(shown).map(|s| s.tags).unwrap_or_default()
}

/// The names of the project's stacks, for "did you mean".
pub async fn stack_names(cloud: &Cloud) -> Result<Vec<String>, CloudError> {
    let v = cloud.send(&heat::list()).await?;
    Ok(v.get("stacks")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("stack_name")?.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// What the checks against the cloud found, for the later steps.
#[derive(Debug, Clone)]
pub struct Found {
    pub fip_network_id: String,
    pub manager_flavor: FlavorSize,
    pub worker_flavor: FlavorSize,
}

/// What a flavor takes of the cores and RAM quotas.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlavorSize {
    pub vcpus: u64,
    pub ram_mb: u64,
}

fn flavor_size(flavors: &Value, wanted: &str) -> FlavorSize {
    let list = flavors.get("flavors").and_then(Value::as_array).cloned().unwrap_or_default();
    let f = list.iter().find(|f| f["id"] == wanted || f["name"] == wanted);
    f.map(|f| FlavorSize { vcpus: f["vcpus"].as_u64().unwrap_or(0), ram_mb: f["ram"].as_u64().unwrap_or(0) })
        .unwrap_or_default()
}

/// Every name the environment files give is looked up before anything is
/// made: flavor, image, key pair, networks. All that are missing are
/// reported at once, at the line that set them, with the closest name the
/// cloud has.
pub async fn preflight(cloud: &Cloud, params: &Params) -> Result<Found, StackError> {
    let calls = [lookup::flavors(), lookup::images(), lookup::keypairs(), lookup::networks()];
    let (flavors, images, keypairs, networks) =
        tokio::join!(cloud.send(&calls[0]), cloud.send(&calls[1]), cloud.send(&calls[2]), cloud.send(&calls[3]));
    let (flavors, images, keypairs, networks) = (flavors?, images?, keypairs?, networks?);

    let names = |v: &Value, list: &str, inner: Option<&str>| -> Vec<(String, String)> {
        v.get(list)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| inner.and_then(|k| x.get(k)).unwrap_or(x))
                    .map(|x| {
                        let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        (s("id"), s("name"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let flavor_list = names(&flavors, "flavors", None);
    let mut image_list = names(&images, "images", None);
    // Glance pages (its api_limit_max caps the limit asked for): an image
    // not on the first page is asked for by name, and by ID when it is one.
    if images.get("next").is_some() {
        let mut wanted = vec![params.server_image.as_str()];
        if params.workers.count > 0 {
            wanted.push(params.workers.image.as_str());
        }
        for w in wanted {
            if image_list.iter().any(|(id, name)| id == w || name == w) {
                continue;
            }
            let named = cloud.send(&lookup::images_named(w)).await?;
            image_list.extend(names(&named, "images", None));
            if let Some(call) = lookup::image(w)
                && let Some(one) = cloud.send_opt(&call).await?
            {
                image_list.extend(names(&serde_json::json!({ "images": [one] }), "images", None));
            }
        }
    }
    let keypair_list = names(&keypairs, "keypairs", Some("keypair"));
    let network_list = names(&networks, "networks", None);

    let mut problems = Vec::new();
    let mut check = |key: &str, value: &str, list: &[(String, String)], what: &str| {
        let found = list.iter().any(|(id, name)| id == value || name == value);
        if !found {
            let known: Vec<&str> = list.iter().map(|(_, n)| n.as_str()).filter(|n| !n.is_empty()).collect();
            let mut p = Problem::new(params.origin(key), format!("{what} `{value}` does not exist in this cloud"))
                .key(key)
                .suggest_from(value, &known);
            if p.hint.is_none() && !known.is_empty() {
                let mut shown: Vec<&str> = known.clone();
                shown.sort_unstable();
                shown.truncate(8);
                p = p.hint(format!("this cloud has: {}", shown.join(", ")));
            }
            problems.push(p);
        }
    };
    check("server_flavor", &params.server_flavor, &flavor_list, "flavor");
    if params.workers.count > 0 && params.workers.flavor != params.server_flavor {
        check("worker_flavor", &params.workers.flavor, &flavor_list, "flavor");
    }
    check("server_image", &params.server_image, &image_list, "image");
    if params.workers.count > 0 && params.workers.image != params.server_image {
        check("worker_image", &params.workers.image, &image_list, "image");
    }
    check("server_key", &params.server_key, &keypair_list, "key pair");
    check("fip_network", &params.fip_network, &network_list, "network");
    if let Network::Existing(n) = &params.network {
        check("private_network", n, &network_list, "network");
    }
    if !problems.is_empty() {
        return Err(StackError::Input(InputError(problems)));
    }
    let fip_network_id = network_list
        .iter()
        .find(|(id, name)| *id == params.fip_network || *name == params.fip_network)
        .map(|(id, _)| id.clone())
        .unwrap_or_default();
    Ok(Found {
        fip_network_id,
        manager_flavor: flavor_size(&flavors, &params.server_flavor),
        worker_flavor: flavor_size(&flavors, &params.workers.flavor),
    })
}

/// The manager's floating IP: the one this stack already has (kept in its
/// state directory), or a new one from `fip_network`. Allocated before the
/// stack so the registry certificate can carry its address.
pub async fn floating_ip(
    cloud: &Cloud,
    state: &StateDir,
    found: &Found,
    stack_name: &str,
    owner: &ownership::Ownership,
) -> Result<(FloatingIp, bool), StackError> {
    // Tagged on every run, so a new expiry reaches it too; a run killed
    // before the tags are set leaves the description, which `gc` reads.
    let tag = |fip: FloatingIp, new: bool| async move {
        cloud.send(&neutron::set_tags(&fip.id, &fleet::floating_ip_tags(stack_name, owner))).await?;
        Ok::<_, StackError>((fip, new))
    };
    if let Some(fip) = remembered_floating_ip(state)?
        && cloud.send_opt(&neutron::floating_ip(&fip.id)).await?.is_some()
    {
        return tag(fip, false).await;
    }
    let v = cloud
        .send(&neutron::create_floating_ip(&found.fip_network_id, &format!("{}{stack_name}", fleet::FIP_DESCRIPTION)))
        .await?;
    let fip = created_floating_ip(&v)?;
    state.write(FLOATING_IP_FILE, &floating_ip_json(&fip), Mode::Public)?;
    tag(fip, true).await
}

/// Neutron's answer to `POST floatingips`, as the record this tool keeps.
fn created_floating_ip(v: &Value) -> Result<FloatingIp, StackError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        floatingip: Created,
    }
    #[derive(serde::Deserialize)]
    struct Created {
        id: String,
        floating_ip_address: std::net::IpAddr,
    }
    let a = <Answer as serde::Deserialize>::deserialize(v).map_err(|e| {
        StackError::Unexpected(format!("Neutron's answer to a floating IP request is not one ({e}): {v}"))
    })?;
    Ok(FloatingIp { id: a.floatingip.id, address: a.floatingip.floating_ip_address })
}

/// The floating IP this stack's earlier run allocated. A record that does
/// not parse is an error, not "none": taking it for none would allocate a
/// second address and leak the first.
pub fn remembered_floating_ip(state: &StateDir) -> Result<Option<FloatingIp>, StateError> {
    let Some(text) = state.read(FLOATING_IP_FILE)? else { return Ok(None) };
    parse_floating_ip_record(&text).map(Some).map_err(|problem| StateError::new(&state.file(FLOATING_IP_FILE), problem))
}

fn parse_floating_ip_record(text: &str) -> Result<FloatingIp, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "not a floating IP record ({e}); it should be {{\"id\": ..., \"address\": ...}} as this tool wrote it: \
             restore it (`openstack floating ip list --long` shows this stack's address in its description), \
             or remove the file to have a new address allocated (the old one is then left to `provision gc`)"
        )
    })
}

fn floating_ip_json(f: &FloatingIp) -> String {
    serde_json::to_string(f).expect("a floating IP record serialises")
}

/// Heat's own check of the bundle (`POST /validate`): nothing is made.
pub async fn validate(cloud: &Cloud, body: &StackBody) -> Result<(), StackError> {
    match cloud.send(&heat::validate(body)).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(400) => Err(StackError::Invalid(e.message())),
        Err(e) => Err(e.into()),
    }
}

/// Heat's preview of what a run would do; changes nothing.
pub async fn preview(
    cloud: &Cloud,
    name: &str,
    existing: Option<&StackRef>,
    body: &StackBody,
) -> Result<Value, StackError> {
    let call = match existing {
        Some(s) => heat::preview_update(&s.name, &s.id, body),
        None => heat::preview_create(name, body),
    };
    match cloud.send(&call).await {
        Ok(v) => Ok(v),
        Err(e) if e.status() == Some(400) => Err(StackError::Invalid(e.message())),
        Err(e) => Err(e.into()),
    }
}

/// A preview as lists of resource names per kind of change.
pub fn preview_changes(v: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if let Some(changes) = v.get("resource_changes").and_then(Value::as_object) {
        for (kind, list) in changes {
            let mut names: Vec<String> = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get("resource_name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            out.insert(kind.clone(), names);
        }
    } else if let Some(resources) = v.get("stack").and_then(|s| s.get("resources")).and_then(Value::as_array) {
        // A new stack's preview lists what would be made.
        let mut names: Vec<String> = resources
            .iter()
            .flat_map(|r| if let Some(a) = r.as_array() { a.clone() } else { vec![r.clone()] })
            .filter_map(|r| r.get("resource_name").and_then(Value::as_str).map(str::to_string))
            .collect();
        names.sort();
        out.insert("added".into(), names);
    }
    out
}

/// What differs between the bundle and what Heat holds for the stack
/// (template, files, parameters), in words. Empty: a run has nothing to
/// change. Asked of Heat each time, so a change made behind this tool's
/// back is seen too.
pub async fn drift(cloud: &Cloud, stack: &StackRef, body: &StackBody) -> Result<Vec<String>, StackError> {
    let calls = ["template", "files", "environment"].map(|w| heat::stored(&stack.name, &stack.id, w));
    let (t, f, e) = tokio::join!(cloud.send(&calls[0]), cloud.send(&calls[1]), cloud.send(&calls[2]));
    Ok(differences(&t?, &f?, &e?, body))
}

/// The comparison behind [`drift`], on Heat's three answers.
pub fn differences(template: &Value, files: &Value, environment: &Value, body: &StackBody) -> Vec<String> {
    let mut out = Vec::new();
    let ours: Value = serde_saphyr::from_str(&body.template).unwrap_or(Value::Null);
    if &ours != template {
        let keys =
            |v: &Value, k: &str| v.get(k).and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>());
        let changed: Vec<String> = ["parameters", "resources", "outputs", "conditions"]
            .into_iter()
            .filter(|k| ours.get(*k) != template.get(*k))
            .map(|k| {
                let (a, b) = (keys(template, k).unwrap_or_default(), keys(&ours, k).unwrap_or_default());
                let added: Vec<_> = b.iter().filter(|x| !a.contains(x)).cloned().collect();
                let gone: Vec<_> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
                let mut s = k.to_string();
                if !added.is_empty() {
                    s.push_str(&format!(" +{}", added.join(" +")));
                }
                if !gone.is_empty() {
                    s.push_str(&format!(" -{}", gone.join(" -")));
                }
                s
            })
            .collect();
        out.push(format!("template ({})", if changed.is_empty() { "other parts".into() } else { changed.join(", ") }));
    }
    let empty = serde_json::Map::new();
    let theirs = files.as_object().unwrap_or(&empty);
    for (name, text) in &body.files {
        match theirs.get(name) {
            Some(t) if t == text => {}
            Some(_) => out.push(format!("file {name}")),
            None => out.push(format!("file {name} (new)")),
        }
    }
    for name in theirs.keys().filter(|k| !body.files.contains_key(*k)) {
        out.push(format!("file {name} (no longer used)"));
    }
    let env: Value = serde_saphyr::from_str(&body.environment).unwrap_or(Value::Null);
    let params = |v: &Value| v.get("parameters").and_then(Value::as_object).cloned().unwrap_or_default();
    let (ours, theirs) = (params(&env), params(environment));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    names.sort();
    names.dedup();
    for k in names {
        match (theirs.get(k), ours.get(k)) {
            (Some(a), Some(b)) if text(a) == text(b) => {}
            (Some(a), Some(b)) => out.push(format!("parameter {k}: {} → {}", text(a), text(b))),
            (None, Some(b)) => out.push(format!("parameter {k}: (default) → {}", text(b))),
            // A parameter Heat has and the bundle no longer gives is kept
            // by a PATCH update: not a change.
            _ => {}
        }
    }
    let registry = |v: &Value| {
        let mut r = v.get("resource_registry").cloned().unwrap_or(Value::Null);
        if let Some(m) = r.as_object_mut() {
            // Heat records each template file used as a type under its own
            // name (`worker.yaml: worker.yaml`), and an empty `resources`.
            m.retain(|k, v| {
                !(k == "resources" && v.as_object().is_some_and(|o| o.is_empty()) || v.as_str() == Some(k.as_str()))
            });
        }
        if r.as_object().is_some_and(|m| m.is_empty()) { Value::Null } else { r }
    };
    if registry(&env) != registry(environment) {
        out.push("resource_registry".into());
    }
    out
}

/// Creates the stack, or converges the existing one (PATCH: parameters not
/// given again are kept), then waits for it to settle.
pub async fn apply(
    cloud: &Cloud,
    name: &str,
    existing: Option<(StackRef, Value)>,
    body: &StackBody,
    opts: &api::Options,
    deadline: Duration,
    watch: &dyn Watch,
) -> Result<Outcome, StackError> {
    let (stack, action, marker, changes) = match existing {
        None => {
            cloud.fresh_token(TOKEN_MARGIN).await?;
            let v = cloud.send(&heat::create(name, body, opts)).await?;
            let stack = StackRef::from_json(name, &v)
                .ok_or_else(|| StackError::Unexpected(format!("Heat's answer to a create has no stack id: {v}")))?;
            (stack, RunAction::Heat(Action::Create), None, vec!["new stack".to_string()])
        }
        Some((stack, mut shown)) => {
            let (mut status, _) = events::status(&shown)?;
            // A stack still in progress (a run that timed out or was
            // interrupted, or a change made elsewhere) is followed to its
            // end, then converged like any other. A delete is not waited for.
            let mut followed = None;
            if !status.settled() {
                if status.action == Action::Delete {
                    return Err(StackError::Busy { name: stack.name, status: status.to_string() });
                }
                shown = follow(cloud, &stack, deadline, watch).await?.ok_or_else(|| {
                    StackError::Unexpected(format!("stack {} was deleted while it was followed", stack.name))
                })?;
                followed = Some(RunAction::Heat(status.action));
                status = events::status(&shown)?.0;
            }
            let changes = drift(cloud, &stack, body).await?;
            // Nothing to change, and nothing failed to fix: leave it alone
            // rather than have Heat walk every resource for nothing.
            if changes.is_empty() && status.succeeded() {
                let follow = Follow::new(stack.clone(), None);
                let mut o = outcome(cloud, stack, followed.unwrap_or(RunAction::Nothing), &shown, &follow).await?;
                o.status = status;
                return Ok(o);
            }
            let last = cloud.send(&heat::last_event(&stack.name, &stack.id)).await?;
            let marker = events::parse_events(&last).pop().map(|e| e.id);
            cloud.fresh_token(TOKEN_MARGIN).await?;
            cloud.send(&heat::update(&stack.name, &stack.id, body, opts)).await?;
            (stack, RunAction::Heat(Action::Update), marker, changes)
        }
    };
    let mut follow = Follow::new(stack.clone(), marker);
    let shown = match wait(cloud, &stack, &mut follow, deadline, watch).await? {
        Waited::Settled(v) => v,
        Waited::Gone => {
            return Err(StackError::Unexpected(format!("stack {} disappeared while it was being made", stack.name)));
        }
    };
    let mut o = outcome(cloud, stack, action, &shown, &follow).await?;
    o.changes = changes;
    Ok(o)
}

/// Follows a stack that is not settled until it is, showing its events
/// from now on; gives what Heat shows at the end (None: it was deleted).
pub async fn follow(
    cloud: &Cloud,
    stack: &StackRef,
    deadline: Duration,
    watch: &dyn Watch,
) -> Result<Option<Value>, StackError> {
    let last = cloud.send(&heat::last_event(&stack.name, &stack.id)).await?;
    let mut follow = Follow::new(stack.clone(), events::parse_events(&last).pop().map(|e| e.id));
    Ok(match wait(cloud, stack, &mut follow, deadline, watch).await? {
        Waited::Settled(v) => Some(v),
        Waited::Gone => None,
    })
}

/// One server of a stack, as `provision logs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLog {
    pub name: String,
    pub server_id: String,
    pub status: String,
    pub console: String,
}

/// The servers of a stack (nested stacks included), by their Nova names.
pub async fn servers(cloud: &Cloud, stack: &StackRef) -> Result<Vec<(String, String, String)>, StackError> {
    let resources = cloud.send(&heat::resources(&stack.name, &stack.id)).await?;
    let ids: Vec<String> = resources
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("resource_type").and_then(Value::as_str) == Some("OS::Nova::Server"))
        .filter_map(|r| r.get("physical_resource_id")?.as_str().filter(|id| !id.is_empty()).map(str::to_string))
        .collect();
    let listed = cloud.send(&api::nova::servers()).await?;
    let mut out: Vec<(String, String, String)> = listed
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let id = s.get("id")?.as_str()?;
            ids.iter().any(|i| i == id).then(|| {
                let name = s.get("name").and_then(Value::as_str).unwrap_or(id).to_string();
                let status = s.get("status").and_then(Value::as_str).unwrap_or("?").to_string();
                (name, id.to_string(), status)
            })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A server's console log, its last `lines` lines.
pub async fn console_log(cloud: &Cloud, server_id: &str, lines: u32) -> Result<String, StackError> {
    let v = cloud.send(&api::nova::console_log(server_id, lines)).await?;
    Ok(v.get("output").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// Deletes the stack and waits until Heat no longer has it.
pub async fn destroy(
    cloud: &Cloud,
    stack: StackRef,
    deadline: Duration,
    watch: &dyn Watch,
) -> Result<Outcome, StackError> {
    let last = cloud.send(&heat::last_event(&stack.name, &stack.id)).await?;
    let marker = events::parse_events(&last).pop().map(|e| e.id);
    cloud.send_opt(&heat::delete(&stack.name, &stack.id)).await?;
    let mut follow = Follow::new(stack.clone(), marker);
    match wait(cloud, &stack, &mut follow, deadline, watch).await? {
        Waited::Gone => Ok(Outcome {
            stack,
            action: RunAction::Heat(Action::Delete),
            status: StackStatus::new(Action::Delete, State::Complete),
            reason: String::new(),
            ok: true,
            changes: vec!["delete".into()],
            outputs: BTreeMap::new(),
            failures: Vec::new(),
            events: follow.events,
            heat_seconds: follow.heat_seconds(),
            tags: Vec::new(),
            ownership: Default::default(),
        }),
        Waited::Settled(v) => outcome(cloud, stack, RunAction::Heat(Action::Delete), &v, &follow).await,
    }
}

/// Releases the floating IP this tool allocated for the stack.
pub async fn release_floating_ip(cloud: &Cloud, state: &StateDir) -> Result<Option<FloatingIp>, StackError> {
    let Some(fip) = remembered_floating_ip(state)? else { return Ok(None) };
    cloud.send_opt(&neutron::delete_floating_ip(&fip.id)).await?;
    state.remove(FLOATING_IP_FILE)?;
    Ok(Some(fip))
}

/// The stack by name as it stands, or `None` when Heat has none: the one
/// read behind `status`, `outputs`, `logs` and node discovery. With
/// `follow`, a stack in progress is followed until it settles first
/// (`None` too if it is deleted meanwhile).
pub async fn show(
    cloud: &Cloud,
    name: &str,
    follow_for: Option<(Duration, &dyn Watch)>,
) -> Result<Option<Outcome>, StackError> {
    let Some((stack, mut shown)) = find(cloud, name).await? else { return Ok(None) };
    if let Some((limit, watch)) = follow_for
        && !events::status(&shown)?.0.settled()
    {
        match follow(cloud, &stack, limit, watch).await? {
            Some(v) => shown = v,
            None => return Ok(None),
        }
    }
    Ok(Some(shown_outcome(cloud, stack, &shown).await?))
}

/// The stack as Heat shows it, reported as it stands (action `SHOW`):
/// what `status`, `outputs`, `logs` and node discovery read.
pub async fn shown_outcome(cloud: &Cloud, stack: StackRef, shown: &Value) -> Result<Outcome, StackError> {
    let follow = Follow::new(stack.clone(), None);
    outcome(cloud, stack, RunAction::Show, shown, &follow).await
}

/// The report on a settled stack; for a failure, which resources failed
/// and why.
pub async fn outcome(
    cloud: &Cloud,
    stack: StackRef,
    action: RunAction,
    shown: &Value,
    follow: &Follow,
) -> Result<Outcome, StackError> {
    let (status, reason) = events::status(shown)?;
    let ok = status.succeeded();
    let failures =
        if ok { Vec::new() } else { events::failures(&cloud.send(&heat::resources(&stack.name, &stack.id)).await?) };
    Ok(Outcome {
        stack,
        action,
        ok,
        changes: Vec::new(),
        outputs: events::outputs(shown),
        status,
        reason,
        failures,
        events: follow.events,
        heat_seconds: follow.heat_seconds(),
        ownership: ownership::Ownership::from_tags(&stack_tags(shown)),
        tags: stack_tags(shown),
    })
}

enum Waited {
    Settled(Value),
    Gone,
}

/// Polls events after the marker; asks for the stack's status only when
/// the stack itself moved, or every few seconds as a fallback.
async fn wait(
    cloud: &Cloud,
    stack: &StackRef,
    follow: &mut Follow,
    deadline: Duration,
    watch: &dyn Watch,
) -> Result<Waited, StackError> {
    const SHOW_EVERY: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let mut last_show = Instant::now();
    let mut pace = Pace::new();
    let mut status = String::from("IN_PROGRESS");
    loop {
        let fresh = cloud
            .send_opt(&heat::events(&stack.name, &stack.id, follow.marker.as_deref()))
            .await?
            .map(|v| follow.take(events::parse_events(&v)));
        let (count, moved) = match &fresh {
            Some((list, moved)) => {
                for e in list {
                    watch.event(e);
                }
                (list.len(), *moved)
            }
            // The stack is gone (a delete finished), or the marker event
            // was purged: the show below tells which.
            None => (0, true),
        };
        if moved || last_show.elapsed() >= SHOW_EVERY {
            last_show = Instant::now();
            let Some(v) = cloud.send_opt(&heat::show(&stack.name, &stack.id)).await? else {
                return Ok(Waited::Gone);
            };
            let now = events::status(&v)?.0;
            status = now.to_string();
            if now == StackStatus::new(Action::Delete, State::Complete) {
                return Ok(Waited::Gone);
            }
            // The last events may have landed after this poll,
            // unless the stack's own final event was among them.
            let final_seen = follow.stack_status.as_deref() == Some(status.as_str());
            if now.settled() {
                if !final_seen
                    && let Ok(rest) = cloud.send(&heat::events(&stack.name, &stack.id, follow.marker.as_deref())).await
                {
                    for e in follow.take(events::parse_events(&rest)).0 {
                        watch.event(&e);
                    }
                }
                return Ok(Waited::Settled(v));
            }
            if fresh.is_none() {
                follow.marker = None;
            }
        }
        watch.progress(&Snapshot {
            status: &status,
            resources_finished: follow.resources_finished(),
            signals: follow.signals_awaited(),
            elapsed: started.elapsed(),
        });
        if started.elapsed() >= deadline {
            return Err(StackError::Timeout { name: stack.name.clone(), status, waited: started.elapsed() });
        }
        tokio::time::sleep(pace.next(count > 0)).await;
    }
}

/// An output as a line of text. A list from a group whose members were
/// not all made has nulls where they are missing: those are counted,
/// not printed.
pub fn output_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().any(Value::is_null) => {
            let made: Vec<String> = items.iter().filter(|i| !i.is_null()).map(output_text).collect();
            let missing = items.len() - made.len();
            let made = if made.is_empty() { "none".to_string() } else { made.join(", ") };
            format!("{made} ({missing} of {} not made)", items.len())
        }
        Value::Array(items) => items.iter().map(output_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutrons_floating_ip_answer_is_read_whole_or_refused() {
        let ok = json!({"floatingip": {"id": "f1", "floating_ip_address": "203.0.113.7", "status": "DOWN"}});
        assert_eq!(
            created_floating_ip(&ok).unwrap(),
            FloatingIp { id: "f1".into(), address: "203.0.113.7".parse().unwrap() }
        );
        for bad in [
            json!({}),
            json!({"floatingip": {"id": "f1"}}),
            json!({"floatingip": {"id": "f1", "floating_ip_address": "x"}}),
        ] {
            assert!(created_floating_ip(&bad).unwrap_err().to_string().contains("not one"), "{bad}");
        }
    }

    #[test]
    fn a_floating_ip_record_round_trips_and_a_corrupt_one_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), "s").unwrap();
        assert_eq!(remembered_floating_ip(&state).unwrap(), None, "no record: none");
        let fip = FloatingIp { id: "f1".into(), address: "203.0.113.7".parse().unwrap() };
        state.write(FLOATING_IP_FILE, &floating_ip_json(&fip), Mode::Public).unwrap();
        assert_eq!(remembered_floating_ip(&state).unwrap(), Some(fip));
        for corrupt in ["", "{", "{\"id\": \"f1\"}", "{\"id\": \"f1\", \"address\": \"not an address\"}"] {
            state.write(FLOATING_IP_FILE, corrupt, Mode::Public).unwrap();
            let e = remembered_floating_ip(&state).expect_err(corrupt).to_string();
            assert!(e.contains(FLOATING_IP_FILE) && e.contains("not a floating IP record"), "{corrupt:?}: {e}");
        }
    }

    #[test]
    fn outputs_read_as_text_with_missing_members_counted() {
        assert_eq!(output_text(&json!("10.0.0.5")), "10.0.0.5");
        assert_eq!(output_text(&json!(["a-0", "a-1"])), "a-0, a-1");
        assert_eq!(output_text(&json!(["a-0", null, "a-2", null])), "a-0, a-2 (2 of 4 not made)");
        assert_eq!(output_text(&json!([null])), "none (1 of 1 not made)");
        assert_eq!(output_text(&json!(3)), "3");
    }

    #[test]
    fn our_tag_comes_first_once_and_is_read_back_from_a_show() {
        let none = ownership::Ownership::default();
        assert_eq!(tags_with_ours(&[], &none), ["provision"]);
        assert_eq!(tags_with_ours(&["ci".into(), "provision".into(), "x".into()], &none), ["provision", "ci", "x"]);
        let owner = ownership::Ownership { owner: Some("ana".into()), ..Default::default() };
        assert_eq!(
            tags_with_ours(&["provision-owner=eve".into(), "x".into()], &owner),
            ["provision", "provision-owner=ana", "x"],
            "a --tag cannot pass for ownership"
        );
        let shown = serde_json::json!({"stack": {"tags": ["ci", "provision"]}});
        assert_eq!(stack_tags(&shown), ["ci", "provision"]);
        assert!(stack_tags(&serde_json::json!({"stack": {"tags": null}})).is_empty());
        assert_eq!(stack_tags(&serde_json::json!({"stack": {"tags": "a,provision"}})), ["a", "provision"]);
    }
    use serde_json::json;

    fn body() -> StackBody {
        let mut files = serde_json::Map::new();
        files.insert("worker.yaml".into(), json!("w"));
        StackBody {
            template: "heat_template_version: 2021-04-16\nresources:\n  a: {type: OS::Heat::None}\n".into(),
            environment: "parameters:\n  worker_count: 2\n  hostname: reg\n".into(),
            files,
        }
    }

    #[test]
    fn what_heat_stored_after_a_create_is_no_difference() {
        let template = json!({"heat_template_version": "2021-04-16", "resources": {"a": {"type": "OS::Heat::None"}}});
        let files = json!({"worker.yaml": "w"});
        let env = json!({"parameters": {"worker_count": 2, "hostname": "reg"}, "parameter_defaults": {},
            "resource_registry": {"resources": {}, "worker.yaml": "worker.yaml"}});
        assert_eq!(differences(&template, &files, &env, &body()), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_change_is_named() {
        let template = json!({"heat_template_version": "2021-04-16", "resources": {"b": {"type": "OS::Heat::None"}}});
        let files = json!({"worker.yaml": "old", "gone.yaml": "x"});
        let env = json!({"parameters": {"worker_count": "1", "hostname": "reg"},
            "resource_registry": {"OS::X": "x.yaml"}});
        let d = differences(&template, &files, &env, &body());
        assert_eq!(
            d,
            [
                "template (resources +a -b)",
                "file worker.yaml",
                "file gone.yaml (no longer used)",
                "parameter worker_count: 1 → 2",
                "resource_registry"
            ]
        );
    }
}

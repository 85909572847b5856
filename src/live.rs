//! The commands that talk to the cloud: `provision --env ...` (create or
//! converge), `status`, `outputs`, `destroy`. Each reads its input fully
//! first (bad input: exit 2, no request made), then runs the stack stage
//! and reports.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use provision::bundle::outputs::StackOutputs;
use provision::bundle::render::Templates;
use provision::bundle::{self, FloatingIp};
use provision::handoff::commands::shell_word;
use provision::handoff::ssh::Settings;
use provision::handoff::{self, imixs};
use provision::params::Params;
use provision::params::{InputError, Problem, Where, credentials};
use provision::stack::{self, Cloud, Outcome, RunAction, StackError, api};
use provision::state::StateDir;

use crate::cli::{DeployArgs, DestroyArgs, GcArgs, Global, ListArgs, LogsArgs, OutputsArgs, StatusArgs};
use crate::commands::{
    Usage, check_stack_name, load, resolve_credentials, state_dir, state_known, state_view, swift_credentials,
};
use crate::ui::{Expected, Progress, Ui};
use provision::stack::fleet;
use provision::stack::ownership::{self, Ownership};

/// The stack was left running in Heat when the wait stopped.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StillRunning {
    pub message: String,
    pub interrupted: bool,
}

/// The credentials a cloud command needs; once found, the command says
/// where it will act.
fn need_credentials(
    given: &Option<credentials::Credentials>,
    ui: &mut Ui,
) -> Result<credentials::Credentials, InputError> {
    if let Some(c) = given {
        ui.acting_on(&c.target());
    }
    given.clone().ok_or_else(|| {
        InputError(vec![
            Problem::new(Where::flag("--os-cloud"), "no OpenStack credentials found")
                .hint("give --os-cloud NAME (clouds.yaml), the OS_* variables of an openrc file, or os_authurl, os_username and os_password in the environment file"),
        ])
    })
}

async fn connect(creds: &credentials::Credentials, progress: &Progress) -> Result<Cloud> {
    Ok(Cloud::connect(creds, progress.notice_fn()).await?)
}

/// `provision --env ...`: everything from the environment files to a
/// settled stack with its outputs.
pub fn deploy(global: &Global, args: &DeployArgs, ui: &mut Ui) -> Result<()> {
    let started = Instant::now();
    let loaded = load(global, ui)?;
    crate::commands::warn_open(&loaded.params, ui);
    let creds = need_credentials(&loaded.credentials, ui)?;
    let state = state_dir(global, &loaded.stack_name)?;
    let swift = swift_credentials(&loaded, ui)?;
    let progress = Progress::new();
    let rt = crate::runtime()?;
    let name = loaded.stack_name.clone();
    // Set once the stack is complete, so an interruption says what it stopped.
    let handing_off = std::cell::Cell::new(false);

    let given = Ownership::for_run(
        &|k| crate::env_var(k),
        args.ttl.as_deref(),
        args.ci_url.as_deref(),
        creds.target().user.as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(Usage)?;
    let run = async {
        let cloud = connect(&creds, &progress).await?;
        let (existing, found) = tokio::join!(stack::find(&cloud, &name), stack::preflight(&cloud, &loaded.params));
        let (existing, found) = (existing?, found.map_err(input_error)?);
        // Before anything is made: a create that would run out of quota
        // halfway is refused with the table.
        if existing.is_none() && !args.skip_quota_check {
            let fresh = stack::remembered_floating_ip(&state)?.is_none();
            let footprint = bundle::exposure::footprint(&loaded.params, fresh);
            stack::quota::check(&cloud, &footprint, &found).await.map_err(|e| match e {
                StackError::Quota(q) => anyhow::Error::from(q),
                other => other.into(),
            })?;
        }
        let owner = match &existing {
            Some((_, shown)) => given.clone().over(&Ownership::from_tags(&stack::stack_tags(shown))),
            None => given.clone(),
        };
        // A preview changes nothing: it uses the floating IP only if this
        // stack already has one.
        let (fip, allocated) = if args.preview {
            (stack::remembered_floating_ip(&state)?, false)
        } else {
            let (f, new) = stack::floating_ip(&cloud, &state, &found, &name, &owner).await?;
            (Some(f), new)
        };
        if allocated && let Some(f) = &fip {
            progress.line(&format!("allocated floating IP {} for the manager", f.address));
        }
        let req = bundle::Request {
            stack_name: &name,
            state: &state,
            templates: global.templates.as_deref(),
            floating_ip: fip.clone(),
            swift_credentials: swift.clone(),
            now: time::OffsetDateTime::now_utc(),
        };
        let b = bundle::build(&loaded.params, &req)?;
        let body =
            api::StackBody { template: b.template.clone(), environment: b.environment.clone(), files: b.files_map() };
        stack::validate(&cloud, &body).await.map_err(input_error)?;

        if args.preview {
            let drift = match &existing {
                Some((s, _)) => Some(stack::drift(&cloud, s, &body).await?),
                None => None,
            };
            if drift.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Done::Preview { drift, changes: Default::default(), plan: b.summary.plan });
            }
            let v =
                stack::preview(&cloud, &name, existing.as_ref().map(|(s, _)| s), &body).await.map_err(input_error)?;
            return Ok(Done::Preview { drift, changes: stack::preview_changes(&v), plan: b.summary.plan });
        }
        let opts = api::Options {
            timeout_mins: Some(args.timeout_minutes()),
            rollback: args.rollback,
            tags: stack::tags_with_ours(&args.tags, &owner),
        };
        // Heat enforces the timeout; this wait allows it a little longer to
        // report its own failure.
        let deadline = Duration::from_secs(args.timeout_minutes() * 60 + 120);
        match &existing {
            Some((s, _)) => progress.line(&format!("stack {} exists ({})", s.name, s.id)),
            None => progress.line(&format!("creating stack {name}:\n{}", b.summary.plan.text().trim_end())),
        }
        progress.expect(Expected {
            resources: existing.is_none().then_some(b.summary.resources),
            node_timeout: Some(loaded.params.node_timeout),
        });
        let outcome = stack::apply(&cloud, &name, existing, &body, &opts, deadline, &progress).await;
        // Stage 4 only on a complete stack: a failed one is reported as
        // Heat left it, and nothing is tried on half-made nodes.
        let handoff = match &outcome {
            Ok(o) if o.ok && loaded.params.handoff => {
                handing_off.set(true);
                Some(hand_off(&loaded.params, global.templates.as_deref(), o, &state, &progress).await)
            }
            Ok(o) if o.ok => Some(HandOff::Skipped("handoff: false in the environment files".into())),
            _ => None,
        };
        Ok::<_, anyhow::Error>(Done::Applied {
            owner,
            handoff,
            outcome: Box::new(outcome),
            fip,
            requests: cloud.requests(),
            summary: Box::new(b.summary),
        })
    };

    let done: Result<Done> = rt.block_on(async {
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(StillRunning {
                message: if handing_off.get() {
                    format!("interrupted during the hand-off; the stack is complete. Hand it off again: {}",
                        again(global, "handoff"))
                } else {
                    format!("interrupted; Heat goes on with what it started. Follow it: {}; resume this run \
                             (follows it to the end, then converges): {}; remove it: {}",
                        again(global, "status --watch"), again(global, ""), again(global, "destroy"))
                },
                interrupted: true,
            }.into()),
        }
    });
    progress.finish();
    match done? {
        Done::Preview { drift, changes, plan } => report_preview(ui, &name, drift.as_deref(), &changes, &plan),
        Done::Applied { outcome, fip, requests, summary, handoff, owner } => {
            let outcome = (*outcome).map_err(|e| stack_error(e, global))?;
            let done = Finished { handoff: handoff.as_ref(), summary: Some(&summary), owner: Some(&owner) };
            report_outcome(ui, global, &outcome, fip.as_ref(), requests, started.elapsed(), done, &state)
        }
    }
}

enum Done {
    /// `drift` is None for a stack that does not exist yet.
    Preview {
        drift: Option<Vec<String>>,
        changes: std::collections::BTreeMap<String, Vec<String>>,
        plan: bundle::exposure::Plan,
    },
    Applied {
        owner: Ownership,
        handoff: Option<HandOff>,
        outcome: Box<Result<Outcome, StackError>>,
        fip: Option<FloatingIp>,
        requests: u64,
        summary: Box<bundle::Summary>,
    },
}

/// What became of stage 4 after a complete stack.
enum HandOff {
    Skipped(String),
    Formed(Box<handoff::swarm::Report>),
    /// The error as shown (no secret: a join token never is in one).
    Failed(String),
}

/// The nodes from the stack's outputs, reached with the keys the bundle put
/// in their node configs (pinned, never learnt on first use).
async fn hand_off(
    params: &Params,
    templates: Option<&std::path::Path>,
    o: &Outcome,
    state: &StateDir,
    progress: &Progress,
) -> HandOff {
    let run = async {
        let nodes = handoff::Nodes::from_outputs(&params.hostname, &o.outputs)?;
        let templates = Templates::load(templates).map_err(|e| handoff::HandoffError::Swarm(e.to_string()))?;
        let stacks = imixs::render(&templates, &params.fqdn(), &imixs::Images::default())?;
        let dir = state.file(imixs::REMOTE_DIR);
        imixs::write_local(&dir, &stacks)?;
        progress.line(&format!("Imixs-Cloud configuration directory: {}", dir.display()));
        progress.line(&format!(
            "hand-off: manager {} at {}, {} workers behind it",
            nodes.manager.name,
            nodes.manager.public_address,
            nodes.workers.len()
        ));
        let seed = seed_of(params, state)?;
        handoff::for_stack(state, &nodes, &stacks, seed.as_ref(), Settings::default(), &|m| progress.step(m)).await
    };
    match run.await {
        Ok(r) => HandOff::Formed(Box::new(r)),
        Err(e) => HandOff::Failed(e.to_string()),
    }
}

/// `seed_images` as the hand-off carries them out: into the private
/// registry with the stack's login, from `seed_registry` with the login in
/// PROVISION_SEED_USER / PROVISION_SEED_PASSWORD (never in a file).
fn seed_of(params: &Params, state: &StateDir) -> Result<Option<handoff::seed::Seed>, handoff::HandoffError> {
    if params.seed.images.is_empty() {
        return Ok(None);
    }
    let password = state
        .read_private(bundle::REGISTRY_PASSWORD)
        .map_err(|e| handoff::HandoffError::Swarm(e.to_string()))?
        .ok_or_else(|| handoff::HandoffError::Swarm("the registry password is not in the state directory".into()))?;
    let into = handoff::seed::Login {
        registry: format!("{}:{}", params.fqdn(), bundle::REGISTRY_PORT),
        user: params.registry.user.clone(),
        password: provision::params::Secret::new(password.trim()),
    };
    let var = |k: &str| crate::env_var(k).filter(|v| !v.is_empty());
    let from = params.seed.registry.as_ref().map(|registry| {
        let login = var("PROVISION_SEED_USER").zip(var("PROVISION_SEED_PASSWORD")).map(|(user, password)| {
            handoff::seed::Login {
                registry: registry.clone(),
                user,
                password: provision::params::Secret::new(password),
            }
        });
        (registry.clone(), login)
    });
    Ok(Some(handoff::seed::Seed { images: params.seed.images.clone(), into, from }))
}

/// What follows the stack in a deploy's report.
#[derive(Default, Clone, Copy)]
struct Finished<'a> {
    handoff: Option<&'a HandOff>,
    summary: Option<&'a bundle::Summary>,
    owner: Option<&'a Ownership>,
}

/// Names the cloud does not have, and templates Heat refuses, are bad
/// input: exit 2, and nothing was made.
fn input_error(e: StackError) -> anyhow::Error {
    match e {
        StackError::Input(problems) => problems.into(),
        StackError::Invalid(message) => InputError(vec![Problem::new(
            Where::Rendered("template.yaml".into()),
            format!("Heat did not accept the rendered stack: {message}"),
        )])
        .into(),
        other => other.into(),
    }
}

fn stack_error(e: StackError, global: &Global) -> anyhow::Error {
    match e {
        StackError::Timeout { .. } => StillRunning {
            message: format!(
                "{e}. Follow it: {}; resume this run (follows it to the end, then converges): {}; remove it: {}",
                again(global, "status --watch"),
                again(global, ""),
                again(global, "destroy")
            ),
            interrupted: false,
        }
        .into(),
        other => other.into(),
    }
}

fn report_preview(
    ui: &Ui,
    name: &str,
    drift: Option<&[String]>,
    changes: &std::collections::BTreeMap<String, Vec<String>>,
    plan: &bundle::exposure::Plan,
) -> Result<()> {
    let mut text = match drift {
        None => format!("Stack {name} does not exist; a run would create:\n"),
        Some([]) => format!("Stack {name} is up to date: a run would change nothing.\n"),
        Some(d) => format!("Stack {name}: a run would update it for: {}\nHeat's preview:\n", d.join("; ")),
    };
    for kind in ["added", "updated", "replaced", "deleted", "unchanged"] {
        if let Some(list) = changes.get(kind).filter(|l| !l.is_empty()) {
            let shown = if kind == "unchanged" { format!("{} resources", list.len()) } else { list.join(", ") };
            text.push_str(&format!("  {kind:<10} {shown}\n"));
        }
    }
    if changes.get("replaced").is_some_and(|l| !l.is_empty()) {
        text.push_str("  (Heat's preview also counts as replaced resources whose properties come from other resources; a real run replaces only what the change reaches.)\n");
    }
    text.push_str("The stack as rendered:\n");
    text.push_str(&plan.text());
    ui.human(&text);
    ui.json(&serde_json::json!({"ok": true, "command": "preview", "stack_name": name, "exists": drift.is_some(),
        "drift": drift, "changes": changes, "plan": plan, "warnings": ui.warnings()}));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report_outcome(
    ui: &Ui,
    global: &Global,
    o: &Outcome,
    fip: Option<&FloatingIp>,
    requests: u64,
    elapsed: Duration,
    done: Finished,
    state: &StateDir,
) -> Result<()> {
    let summary = done.summary;
    let verdict = match o.action {
        RunAction::Nothing => format!("is up to date ({}), nothing to change", o.status),
        _ => o.status.to_string(),
    };
    let mut text = format!(
        "Stack {} {} in {:.1} s (Heat: {}, {} events, {} requests)\n",
        o.stack.name,
        verdict,
        elapsed.as_secs_f64(),
        o.heat_seconds.map_or("-".into(), |s| format!("{s:.0} s")),
        o.events,
        requests
    );
    text.push_str(&outputs_text(o));
    if !o.ok {
        text.push_str(&failures_text(o));
        text.push_str(&format!(
            "The stack is kept as it is. Retry (converges it): {}\nRemove it: {}\n",
            again(global, ""),
            again(global, "destroy")
        ));
    } else if let Some(s) = summary {
        text.push_str(&format!(
            "Registry CA: {} (the certificate names {}).\nCheck the registry from here: {}\n",
            s.ca_cert_file.display(),
            s.certificate_names.join(", "),
            again(
                global,
                &format!("check --address {}", fip.map_or("<floating IP>".to_string(), |f| f.address.to_string()))
            )
        ));
    }
    let handoff_json = match done.handoff {
        None => serde_json::Value::Null,
        Some(HandOff::Skipped(why)) => {
            text.push_str(&format!("Hand-off skipped: {why}.\n"));
            serde_json::json!({"ok": true, "skipped": why})
        }
        Some(HandOff::Formed(r)) => {
            text.push_str(&if r.changed() {
                format!("Swarm converged: {} changes ({}).\n", r.done.len(), r.done.join("; "))
            } else {
                "Swarm already formed: nothing to do.\n".to_string()
            });
            text.push_str(&format!("  nodes     {} Ready: {}\n", r.ready.len(), r.ready.join(", ")));
            text.push_str(&format!("  networks  {}\n", r.networks.join(", ")));
            text.push_str(&format!("  stacks    {}\n", r.stacks.join(", ")));
            serde_json::json!({"ok": true, "changed": r.changed(), "done": r.done, "notes": r.notes,
                "ready": r.ready, "members": r.members, "networks": r.networks, "stacks": r.stacks,
                "config_dir": state.file(imixs::REMOTE_DIR)})
        }
        Some(HandOff::Failed(e)) => {
            text.push_str(&format!(
                "Hand-off FAILED: {e}\nThe stack is complete; run again to retry the hand-off: {}\n",
                again(global, "")
            ));
            serde_json::json!({"ok": false, "error": e})
        }
    };
    let handoff_failed = matches!(done.handoff, Some(HandOff::Failed(_)));
    ui.human(&text);
    ui.json(&serde_json::json!({
        "ok": o.ok && !handoff_failed,
        "handoff": handoff_json,
        "command": match o.action { RunAction::Heat(stack::Action::Delete) => "destroy", _ => "deploy" },
        "stack": o,
        "floating_ip": fip.map(|f| serde_json::json!({"id": f.id, "address": f.address.to_string()})),
        "elapsed_seconds": elapsed.as_secs_f64(),
        "requests": requests,
        "state_dir": state.path(),
        "bundle": summary,
        "ownership": done.owner,
        "retry": (!o.ok).then(|| again(global, "")),
        "remove": (!o.ok).then(|| again(global, "destroy")),
        "warnings": ui.warnings(),
    }));
    if o.ok && handoff_failed {
        Err(anyhow!("stack {} is complete, but the hand-off failed", o.stack.name))
    } else if o.ok {
        Ok(())
    } else {
        let first =
            o.failures.first().map(|f| format!(": {} {}: {}", f.resource, f.status, f.reason)).unwrap_or_default();
        Err(anyhow!("stack {} is {}{}", o.stack.name, o.status, stack::events::one_line(&first, 300)))
    }
}

fn outputs_text(o: &Outcome) -> String {
    let width = o.outputs.keys().map(String::len).max().unwrap_or(0);
    o.outputs.iter().map(|(k, v)| format!("  {k:<width$}  {}\n", stack::output_text(v))).collect()
}

fn failures_text(o: &Outcome) -> String {
    let mut text = String::new();
    if !o.reason.is_empty() {
        text.push_str(&format!("Heat: {}\n", stack::events::one_line(&o.reason, 400)));
    }
    // Identical failures are one line; the JSON keeps every one.
    for g in stack::events::group_failures(&o.failures) {
        let f = g.first;
        let place = f.parent.as_deref().map(|p| format!(" (in {p})")).unwrap_or_default();
        let who = match g.resources.len() {
            1 => f.resource.clone(),
            n if n <= 8 => format!("{n} resources ({})", g.resources.join(", ")),
            n => format!("{n} resources ({}, …)", g.resources[..8].join(", ")),
        };
        text.push_str(&format!("  FAILED {who}{place} [{}]: {}\n", f.kind, stack::events::one_line(&f.reason, 400)));
        if let Some(node) = stack::events::node_reason(f) {
            text.push_str(&format!("    the node said: {node}\n"));
        }
    }
    text
}

/// The stack as Heat shows it now, reported as an [`Outcome`]; with
/// `watch`, a stack in progress is followed until it settles first.
fn show(global: &Global, ui: &mut Ui, watch: Option<Duration>) -> Result<(String, Option<Outcome>)> {
    let (name, given) = load_for_name(global, ui)?;
    let creds = need_credentials(&given, ui)?;
    let progress = Progress::new();
    let rt = crate::runtime()?;
    let outcome = rt.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let Some((stack_ref, mut shown)) = stack::find(&cloud, &name).await? else {
            return Ok::<_, anyhow::Error>(None);
        };
        if let Some(limit) = watch
            && !stack::events::status(&shown)?.0.settled()
        {
            match stack::follow(&cloud, &stack_ref, limit, &progress).await {
                Ok(Some(v)) => shown = v,
                Ok(None) => return Ok(None),
                Err(e) => return Err(stack_error(e, global)),
            }
        }
        Ok(Some(stack::shown_outcome(&cloud, stack_ref, &shown).await?))
    })?;
    progress.finish();
    Ok((name, outcome))
}

/// `provision status [--watch]`.
pub fn status(global: &Global, ui: &mut Ui, args: &StatusArgs) -> Result<()> {
    let watch = args.watch.then(|| Duration::from_secs(args.watch_timeout * 60));
    let (name, outcome) = show(global, ui, watch)?;
    let Some(o) = outcome else {
        ui.json(&serde_json::json!({"ok": false, "command": "status", "stack_name": name, "status": "NOT_FOUND"}));
        return Err(anyhow!("no stack named {name}"));
    };
    let mut text = format!("Stack {} ({}): {}\n", o.stack.name, o.stack.id, o.status);
    text.push_str(&outputs_text(&o));
    if !o.ok {
        text.push_str(&failures_text(&o));
    }
    ui.human(&text);
    ui.json(&serde_json::json!({"ok": o.ok, "command": "status", "stack": o, "warnings": ui.warnings()}));
    if o.ok {
        return Ok(());
    }
    if !o.status.settled() {
        return Err(anyhow!("stack {} is {}; follow it: {}", o.stack.name, o.status, again(global, "status --watch")));
    }
    Err(anyhow!("stack {} is {}", o.stack.name, o.status))
}

/// `provision outputs [KEY]`: only a settled stack has final outputs.
pub fn outputs(global: &Global, ui: &mut Ui, args: &OutputsArgs) -> Result<()> {
    let (name, outcome) = show(global, ui, None)?;
    let Some(o) = outcome else {
        ui.json(&serde_json::json!({"ok": false, "command": "outputs", "stack_name": name, "status": "NOT_FOUND"}));
        return Err(anyhow!("no stack named {name}"));
    };
    if !o.status.settled() {
        return Err(anyhow!(
            "stack {} is {}: its outputs are not final yet; follow it: {}",
            o.stack.name,
            o.status,
            again(global, "status --watch")
        ));
    }
    let Some(key) = &args.key else {
        ui.human(&outputs_text(&o));
        ui.json(&serde_json::json!({"ok": true, "command": "outputs", "stack": o.stack, "status": o.status,
            "tags": o.tags, "ownership": o.ownership, "outputs": o.outputs}));
        return Ok(());
    };
    let Some(value) = o.outputs.get(key) else {
        let keys: Vec<&str> = o.outputs.keys().map(String::as_str).collect();
        let hint = provision::params::error::did_you_mean(key, &keys)
            .unwrap_or_else(|| format!("its outputs: {}", keys.join(", ")));
        return Err(Usage(format!("stack {} has no output `{key}`; {hint}", o.stack.name)).into());
    };
    match value {
        serde_json::Value::String(s) => ui.human(&format!("{s}\n")),
        other => ui.human(&format!("{other}\n")),
    }
    ui.json(&serde_json::json!({"ok": true, "command": "outputs", "stack": o.stack, "key": key, "value": value}));
    Ok(())
}

/// `provision logs [NODE]`: consoles from Nova, and the nodes' signals.
pub fn logs(global: &Global, ui: &mut Ui, args: &LogsArgs) -> Result<()> {
    let (name, given) = load_for_name(global, ui)?;
    let creds = need_credentials(&given, ui)?;
    let progress = Progress::new();
    let rt = crate::runtime()?;
    let (outcome, logs) = rt.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let Some((stack_ref, shown)) = stack::find(&cloud, &name).await? else {
            return Err(anyhow!("no stack named {name}"));
        };
        let o = stack::shown_outcome(&cloud, stack_ref.clone(), &shown).await?;
        let servers = stack::servers(&cloud, &stack_ref).await?;
        let manager = StackOutputs::read(&o.outputs).manager_name;
        let wanted: Vec<_> = match (&args.node, &manager) {
            (Some(n), _) => servers.iter().filter(|s| &s.0 == n).collect(),
            (None, Some(m)) if servers.iter().any(|s| &s.0 == m) => servers.iter().filter(|s| &s.0 == m).collect(),
            (None, _) => servers.iter().collect(),
        };
        if wanted.is_empty() {
            let names: Vec<&str> = servers.iter().map(|s| s.0.as_str()).collect();
            return Err(Usage(format!(
                "stack {name} has no server {}; its servers: {}",
                args.node.as_deref().unwrap_or("yet"),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ))
            .into());
        }
        let mut logs = Vec::new();
        for (server, id, status) in wanted {
            let console = stack::console_log(&cloud, id, args.lines).await?;
            logs.push(stack::NodeLog { name: server.clone(), server_id: id.clone(), status: status.clone(), console });
        }
        Ok((o, logs))
    })?;
    progress.finish();
    let mut text = String::new();
    for l in &logs {
        text.push_str(&format!("== {} ({}, {}): console, last {} lines\n", l.name, l.server_id, l.status, args.lines));
        text.push_str(&l.console);
        if !l.console.ends_with('\n') {
            text.push('\n');
        }
    }
    let signals: Vec<String> = outcome.failures.iter().filter_map(stack::events::node_reason).collect();
    for s in &signals {
        text.push_str(&format!("== a node signalled Heat:\n{s}\n"));
    }
    ui.human(&text);
    ui.json(&serde_json::json!({"ok": true, "command": "logs", "stack": outcome.stack, "status": outcome.status,
        "nodes": logs, "signals": signals}));
    Ok(())
}

/// `provision destroy`: the stack, then the floating IP this tool made.
/// Only a stack provision made (tagged [`stack::OUR_TAG`]) unless
/// `--force`; on a terminal only after a yes.
/// The credentials alone, for the commands about the whole project: from
/// the env files when given, else clouds.yaml or the OS_* variables.
fn project_credentials(global: &Global, ui: &mut Ui) -> Result<credentials::Credentials> {
    let given = if global.env.is_empty() {
        resolve_credentials(global, &Default::default(), ui)?
    } else {
        load(global, ui)?.credentials
    };
    Ok(need_credentials(&given, ui)?)
}

/// One line of `provision list`.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    stack: &'a ownership::StackSeen,
    #[serde(flatten)]
    ownership: Ownership,
    expired: bool,
    age_seconds: Option<i64>,
    floating_ip: Option<&'a str>,
}

/// `provision list`: the stacks provision made in the project.
pub fn list(global: &Global, args: &ListArgs, ui: &mut Ui) -> Result<()> {
    let creds = project_credentials(global, ui)?;
    let progress = Progress::new();
    let (stacks, fips, requests) = crate::runtime()?.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let (stacks, fips) = fleet::survey(&cloud).await?;
        Ok::<_, anyhow::Error>((stacks, fips, cloud.requests()))
    })?;
    progress.finish();
    let now = time::OffsetDateTime::now_utc();
    let shown: Vec<Listed> = stacks
        .iter()
        .map(|s| {
            let own = s.ownership();
            Listed {
                stack: s,
                expired: own.expired(now),
                ownership: own,
                age_seconds: s.created.map(|c| (now - c).whole_seconds()),
                floating_ip: fips.iter().find(|f| f.stack() == Some(s.name.as_str())).map(|f| f.address.as_str()),
            }
        })
        .filter(|l| args.tags.iter().all(|t| l.stack.tags.contains(t)))
        .filter(|l| args.owner.as_ref().is_none_or(|o| l.ownership.owner.as_ref() == Some(o)))
        .filter(|l| !args.expired || l.expired)
        .filter(|l| !args.failed || stack::StackStatus::parse(&l.stack.status).is_some_and(stack::StackStatus::failed))
        .collect();
    let mut text = String::new();
    if shown.is_empty() {
        text.push_str("No stacks made by provision here (with these filters).\n");
    } else {
        let rows: Vec<[String; 6]> = shown
            .iter()
            .map(|l| {
                let age = l.age_seconds.map_or("-".into(), |a| short_span(a.max(0) as u64));
                let expires = match l.ownership.expires {
                    Some(e) if l.expired => format!("expired {}", ownership::rfc3339(e)),
                    Some(e) => ownership::rfc3339(e),
                    None => "-".into(),
                };
                [
                    l.stack.name.clone(),
                    l.stack.status.clone(),
                    l.ownership.owner.clone().unwrap_or_else(|| "-".into()),
                    age,
                    expires,
                    l.floating_ip.unwrap_or("-").to_string(),
                ]
            })
            .collect();
        let head = ["NAME", "STATUS", "OWNER", "AGE", "EXPIRES", "FLOATING IP"].map(str::to_string);
        let widths: Vec<usize> =
            (0..6).map(|i| rows.iter().chain(std::iter::once(&head)).map(|r| r[i].len()).max().unwrap_or(0)).collect();
        for r in std::iter::once(&head).chain(&rows) {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
    }
    ui.human(&text);
    ui.json(&serde_json::json!({"ok": true, "command": "list", "stacks": shown, "requests": requests,
        "warnings": ui.warnings()}));
    Ok(())
}

/// `90 s`, `12 min`, `3 h`, `2 d`.
fn short_span(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

/// `provision gc`: what CI left behind, judged, and with --yes deleted.
pub fn gc(global: &Global, args: &GcArgs, ui: &mut Ui) -> Result<()> {
    let grace = ownership::parse_ttl(&args.grace).map_err(|e| Usage(format!("--grace: {e}")))?;
    let creds = project_credentials(global, ui)?;
    let progress = Progress::new();
    let (plan, requests) = crate::runtime()?.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let ((stacks, fips), names) =
            tokio::try_join!(async { fleet::survey(&cloud).await.map_err(anyhow::Error::from) }, async {
                fleet::all_stack_names(&cloud).await.map_err(anyhow::Error::from)
            })?;
        let mut plan = fleet::plan(&stacks, &fips, &names, time::OffsetDateTime::now_utc(), grace);
        if args.yes {
            fleet::carry_out(&cloud, &mut plan, &fips, Duration::from_secs(args.timeout * 60), &progress).await;
        }
        Ok::<_, anyhow::Error>((plan, cloud.requests()))
    })?;
    progress.finish();
    let mut text = String::new();
    for j in &plan {
        let (word, why) = match &j.verdict {
            ownership::Verdict::Delete(w) => (if args.yes { "delete" } else { "would delete" }, w),
            ownership::Verdict::Mark(w) => (if args.yes { "mark" } else { "would mark" }, w),
            ownership::Verdict::Keep(w) => ("keep", w),
        };
        let kind = if j.kind == "stack" { "stack" } else { "floating IP" };
        let result = j.result.as_deref().map(|r| format!(" → {r}")).unwrap_or_default();
        text.push_str(&format!("{word:<12} {kind} {}: {why}{result}\n", j.name));
    }
    if plan.is_empty() {
        text.push_str("Nothing of provision's here.\n");
    }
    if !args.yes && plan.iter().any(|j| !matches!(j.verdict, ownership::Verdict::Keep(_))) {
        text.push_str("Nothing was changed; run with --yes to do it.\n");
    }
    let errors: Vec<&fleet::Judged> = plan
        .iter()
        .filter(|j| j.result.as_deref().is_some_and(|r| r.starts_with("error") || r.contains("FAILED")))
        .collect();
    ui.human(&text);
    ui.json(&serde_json::json!({"ok": errors.is_empty(), "command": "gc", "dry_run": !args.yes, "items": plan,
        "requests": requests, "warnings": ui.warnings()}));
    if errors.is_empty() { Ok(()) } else { Err(anyhow!("gc could not remove {} of them; see above", errors.len())) }
}

pub fn destroy(global: &Global, args: &DestroyArgs, ui: &mut Ui) -> Result<()> {
    let started = Instant::now();
    let (name, given) = load_for_name(global, ui)?;
    let creds = need_credentials(&given, ui)?;
    // A stack this machine's state knows is not a misspelling: when Heat no
    // longer has it, it is gone already (exit 0, and its floating IP goes).
    let known = state_known(global, &name);
    let state = if known { state_dir(global, &name)? } else { state_view(global, &name)? };
    let progress = Progress::new();
    let rt = crate::runtime()?;
    // Heat's stack, if any; for a name neither Heat nor this machine
    // knows, the project's stack names, to suggest from.
    let (cloud, stack, others) = rt.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let stack = stack::find(&cloud, &name).await?;
        let others = if stack.is_none() && !known { Some(stack::stack_names(&cloud).await?) } else { None };
        Ok::<_, anyhow::Error>((cloud, stack, others))
    })?;
    progress.finish();
    if let Some(others) = others {
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let hint = match provision::params::error::closest(&name, &others) {
            Some(c) => format!("; did you mean `{c}`? ({})", again_named(global, "destroy", c)),
            None => String::new(),
        };
        return Err(Usage(format!("no stack named {name} in this project{hint}")).into());
    }
    if let Some((s, shown)) = &stack {
        let tags = stack::stack_tags(shown);
        if !args.force && !tags.iter().any(|t| t == stack::OUR_TAG) {
            return Err(Usage(format!(
                "stack {} ({}) was not made by provision: it has no `{}` tag (its tags: {}). \
                 Delete it with --force if that is what you mean; a stack provision made before it tagged \
                 its stacks gets the tag on its next run ({})",
                s.name,
                s.id,
                stack::OUR_TAG,
                if tags.is_empty() { "none".to_string() } else { tags.join(", ") },
                again(global, ""),
            ))
            .into());
        }
        if !args.yes && !ui.json && crate::terminal::interactive() {
            let question = format!("Delete stack {} ({})? [y/N] ", s.name, s.id);
            if !crate::terminal::confirm(&question).context("asking on the terminal")? {
                return Err(anyhow!("not deleted: the answer was not yes"));
            }
        }
    }
    let progress = Progress::new();
    let (outcome, released, requests) = rt.block_on(async {
        let outcome = match stack {
            Some((s, _)) => Some(stack::destroy(&cloud, s, Duration::from_secs(args.timeout * 60), &progress).await?),
            None => None,
        };
        let stack_gone = outcome.as_ref().is_none_or(|o| o.ok);
        let released =
            if stack_gone && !args.keep_floating_ip { stack::release_floating_ip(&cloud, &state).await? } else { None };
        Ok::<_, anyhow::Error>((outcome, released, cloud.requests()))
    })?;
    progress.finish();
    let fip_line = match (&released, args.keep_floating_ip) {
        (Some(f), _) => format!("Released floating IP {}.\n", f.address),
        (None, true) => "Kept the floating IP (--keep-floating-ip).\n".to_string(),
        (None, false) => String::new(),
    };
    match outcome {
        None => {
            ui.human(&format!("Stack {name} is gone already; nothing to delete.\n{fip_line}"));
            ui.json(&serde_json::json!({"ok": true, "command": "destroy", "stack_name": name, "status": "NOT_FOUND",
                "released_floating_ip": released.map(|f| f.address.to_string()), "requests": requests}));
            Ok(())
        }
        Some(o) => {
            ui.human(&fip_line);
            report_outcome(ui, global, &o, released.as_ref(), requests, started.elapsed(), Finished::default(), &state)
        }
    }
}

/// The nodes of an existing stack, read from its outputs, for the commands
/// that reach them without an inventory (`provision ssh`, `provision
/// handoff`).
pub struct StackNodes {
    pub name: String,
    pub nodes: handoff::Nodes,
    /// `hostname.domain`, the registry's name.
    pub fqdn: String,
}

/// Asks Heat for the stack's outputs. `check` runs on what was read
/// locally (the stack's state directory) before anything is sent, so bad
/// input still makes no request.
/// `writes` locks the state for the caller (see [`state_dir`]).
pub fn stack_nodes(
    global: &Global,
    ui: &mut Ui,
    writes: bool,
    check: impl FnOnce(&StateDir) -> Result<()>,
) -> Result<StackNodes> {
    let (name, given, hostname) = if global.env.is_empty() {
        let (name, given) = load_for_name(global, ui)?;
        (name, given, None)
    } else {
        let loaded = load(global, ui)?;
        (loaded.stack_name, loaded.credentials, Some((loaded.params.hostname.clone(), loaded.params.fqdn())))
    };
    let creds = need_credentials(&given, ui)?;
    check(&if writes { state_dir(global, &name)? } else { state_view(global, &name)? })?;
    let progress = Progress::new();
    let outcome = crate::runtime()?.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let Some((stack_ref, shown)) = stack::find(&cloud, &name).await? else {
            return Ok::<_, anyhow::Error>(None);
        };
        Ok(Some(stack::shown_outcome(&cloud, stack_ref, &shown).await?))
    })?;
    progress.finish();
    let o = outcome.ok_or_else(|| anyhow!("no stack named {name}; make it first: {}", again(global, "")))?;
    // The hand-off needs a complete stack; `ssh` only needs the manager to
    // have an address, which is when a failed stack needs looking at.
    if !o.ok && writes {
        return Err(anyhow!("stack {name} is {}; it is handed off once it is complete", o.status));
    }
    // The template's outputs name the manager and the registry; env files,
    // when given, say the same (a stack made by an older template lacks
    // `manager_name`).
    let read = StackOutputs::read(&o.outputs);
    let manager = read.manager_name.or_else(|| hostname.as_ref().map(|h| h.0.clone())).ok_or_else(|| {
        anyhow!("stack {name} has no output `manager_name`; give the environment files (--env) to name the manager")
    })?;
    let fqdn = read.registry.map(|r| r.host).or_else(|| hostname.map(|h| h.1)).unwrap_or_else(|| manager.clone());
    let nodes = match handoff::Nodes::from_outputs(&manager, &o.outputs) {
        Ok(n) => n,
        Err(e) if !o.ok => handoff::Nodes::manager_from_outputs(&manager, &o.outputs)
            .map_err(|m| anyhow!("stack {name} is {}, and its manager cannot be reached yet: {m} ({e})", o.status))?,
        Err(e) => return Err(e.into()),
    };
    Ok(StackNodes { name, nodes, fqdn })
}

/// Commands that need only the stack's name and credentials: `--name`
/// alone will do, without environment files, when the credentials come
/// from clouds.yaml or OS_* variables.
fn load_for_name(global: &Global, ui: &mut Ui) -> Result<(String, Option<credentials::Credentials>)> {
    if global.env.is_empty()
        && let Some(name) = &global.name
    {
        let credentials = resolve_credentials(global, &Default::default(), ui)?;
        let name = crate::commands::suffixed(name, global.name_suffix.as_deref());
        check_stack_name(&name)?;
        return Ok((name, credentials));
    }
    let loaded = load(global, ui)?;
    Ok((loaded.stack_name, loaded.credentials))
}

/// The command that does `sub` to the same stack, with the same inputs,
/// ready to paste.
pub fn again(global: &Global, sub: &str) -> String {
    let mut words = vec!["provision".to_string()];
    if !sub.is_empty() {
        words.extend(sub.split(' ').map(str::to_string));
    }
    for e in &global.env {
        words.push("--env".into());
        words.push(shell_word(&e.display().to_string()));
    }
    let mut flag = |f: &str, v: Option<String>| {
        if let Some(v) = v {
            words.push(f.into());
            words.push(shell_word(&v));
        }
    };
    flag("--name", global.name.clone());
    flag("--name-suffix", global.name_suffix.clone());
    flag("--os-cloud", global.os_cloud.clone());
    flag("--state-dir", global.state_dir.as_ref().map(|p| p.display().to_string()));
    flag("--templates", global.templates.as_ref().map(|p| p.display().to_string()));
    words.join(" ")
}

/// [`again`] for another stack name.
fn again_named(global: &Global, sub: &str, name: &str) -> String {
    let mut other = global.clone();
    other.name = Some(name.to_string());
    other.name_suffix = None;
    again(&other, sub)
}

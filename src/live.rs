//! The commands that talk to the cloud: `provision --env ...` (create or
//! converge), `status`, `outputs`, `logs`, `list`, `gc`, `destroy`. Each
//! reads its input fully first (bad input: exit 2, no request made), runs
//! the library, and reports.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use provision::bundle;
use provision::bundle::outputs::StackOutputs;
use provision::deploy::{self, Done, HandOff, Step};
use provision::params::Secret;
use provision::stack::fleet;
use provision::stack::ownership::{self, Ownership};
use provision::stack::{self, Outcome, RunAction, StackError};
use provision::state::{FloatingIp, StateDir, layout};

use crate::cli::{DeployArgs, DestroyArgs, GcArgs, Global, ListArgs, LogsArgs, OutputsArgs, StatusArgs};
use crate::input::{
    Usage, again, again_named, connect, load, load_for_name, need_credentials, project_credentials, state_dir,
    state_known, state_view, swift_login,
};
use crate::ui::{Progress, Ui};

/// The stack was left running in Heat when the wait stopped.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StillRunning {
    pub message: String,
    pub interrupted: bool,
}

/// `provision --env ...`: the library's steps from the environment files
/// to a settled stack and its swarm, then the report.
pub fn deploy(global: &Global, args: &DeployArgs, ui: &mut Ui) -> Result<()> {
    let started = Instant::now();
    let inputs = load(global, ui)?;
    ui.warn_open(&inputs.params);
    let creds = need_credentials(&inputs.credentials, ui)?;
    let state = state_dir(global, &inputs.stack_name)?;
    let swift = swift_login(&inputs, ui)?;
    let ownership = Ownership::for_run(
        &|k| crate::env_var(k),
        args.ttl.as_deref(),
        args.ci_url.as_deref(),
        creds.target().user.as_deref(),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(Usage)?;
    // The seed registry's login is given in the environment, never a file.
    let var = |k: &str| crate::env_var(k).filter(|v| !v.is_empty());
    let seed_login = var("PROVISION_SEED_USER").zip(var("PROVISION_SEED_PASSWORD").map(Secret::new));
    let opts = deploy::Options {
        preview: args.preview,
        check_quota: !args.skip_quota_check,
        timeout_minutes: args.timeout_minutes(),
        rollback: args.rollback,
        tags: &args.tags,
        ownership,
        templates: global.templates.as_deref(),
        swift,
        seed_login,
        now: time::OffsetDateTime::now_utc(),
    };
    let progress = Progress::new();
    let done: Result<Done> = crate::runtime()?.block_on(async {
        tokio::select! {
            r = deploy::run(&inputs, &creds, &state, &opts, &progress) => r.map_err(|e| deploy_error(e, global, ui)),
            _ = tokio::signal::ctrl_c() => Err(StillRunning {
                message: if progress.current_step() == Some(Step::HandOff) {
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
        Done::Preview { drift, changes, plan } => {
            report_preview(ui, &inputs.stack_name, drift.as_deref(), &changes, &plan)
        }
        Done::Applied(a) => {
            let done = Finished { handoff: a.handoff.as_ref(), summary: Some(&a.summary), owner: Some(&a.owner) };
            let fip = a.floating_ip.as_ref();
            report_outcome(ui, global, &a.outcome, fip, a.requests, started.elapsed(), done, &state)
        }
    }
}

/// A step that failed, as the error its stage gave (so the exit code
/// follows its kind), after a warning naming what it left on the cloud.
fn deploy_error(e: deploy::DeployError, global: &Global, ui: &mut Ui) -> anyhow::Error {
    if !e.left_behind.is_empty() {
        ui.warn(&format!(
            "stopped while {}; left behind: {}. Run again to go on, or remove them: {}",
            e.step.doing(),
            e.left_behind.join(", "),
            again(global, "destroy")
        ));
    }
    match e.failure {
        deploy::Failure::Input(i) => i.into(),
        deploy::Failure::Quota(q) => q.into(),
        deploy::Failure::Stack(s) => stack_error(s, global),
        deploy::Failure::Cloud(c) => c.into(),
        deploy::Failure::Bundle(b) => b.into(),
        deploy::Failure::State(s) => s.into(),
    }
}

/// What follows the stack in a deploy's report.
#[derive(Default, Clone, Copy)]
struct Finished<'a> {
    handoff: Option<&'a HandOff>,
    summary: Option<&'a bundle::Summary>,
    owner: Option<&'a Ownership>,
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
    #[derive(Serialize)]
    struct Preview<'a> {
        stack_name: &'a str,
        exists: bool,
        drift: Option<&'a [String]>,
        changes: &'a std::collections::BTreeMap<String, Vec<String>>,
        plan: &'a bundle::exposure::Plan,
    }
    ui.result("preview", true, &Preview { stack_name: name, exists: drift.is_some(), drift, changes, plan });
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
    let r = stack_report(global, o, fip, requests, elapsed, done, state);
    ui.human(&r.text);
    ui.result(r.command, r.ok, &r.fields);
    // A complete stack whose report is not ok is one whose hand-off failed.
    if o.ok && !r.ok {
        Err(anyhow!("stack {} is complete, but the hand-off failed", o.stack.name))
    } else if o.ok {
        Ok(())
    } else {
        let first =
            o.failures.first().map(|f| format!(": {} {}: {}", f.resource, f.status, f.reason)).unwrap_or_default();
        Err(anyhow!("stack {} is {}{}", o.stack.name, o.status, stack::events::one_line(&first, 300)))
    }
}

/// A deploy's or destroy's report: the text for people, and the fields
/// of the JSON for programs.
struct StackReport<'a> {
    text: String,
    command: &'static str,
    ok: bool,
    fields: StackFields<'a>,
}

#[derive(Serialize)]
struct StackFields<'a> {
    handoff: Option<HandOffFields<'a>>,
    stack: &'a Outcome,
    floating_ip: Option<&'a FloatingIp>,
    elapsed_seconds: f64,
    requests: u64,
    state_dir: &'a std::path::Path,
    bundle: Option<&'a bundle::Summary>,
    ownership: Option<&'a Ownership>,
    /// The commands that retry or remove a failed stack.
    retry: Option<String>,
    remove: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum HandOffFields<'a> {
    Skipped {
        ok: bool,
        skipped: &'a str,
    },
    Formed {
        ok: bool,
        changed: bool,
        #[serde(flatten)]
        report: &'a provision::handoff::swarm::Report,
        config_dir: std::path::PathBuf,
    },
    Failed {
        ok: bool,
        error: &'a str,
    },
}

#[allow(clippy::too_many_arguments)]
fn stack_report<'a>(
    global: &Global,
    o: &'a Outcome,
    fip: Option<&'a FloatingIp>,
    requests: u64,
    elapsed: Duration,
    done: Finished<'a>,
    state: &'a StateDir,
) -> StackReport<'a> {
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
    let handoff = match done.handoff {
        None => None,
        Some(HandOff::Skipped(why)) => {
            text.push_str(&format!("Hand-off skipped: {why}.\n"));
            Some(HandOffFields::Skipped { ok: true, skipped: why })
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
            Some(HandOffFields::Formed {
                ok: true,
                changed: r.changed(),
                report: r,
                config_dir: state.file(layout::IMIXS_DIR),
            })
        }
        Some(HandOff::Failed(e)) => {
            text.push_str(&format!(
                "Hand-off FAILED: {e}\nThe stack is complete; run again to retry the hand-off: {}\n",
                again(global, "")
            ));
            Some(HandOffFields::Failed { ok: false, error: e })
        }
    };
    let handoff_failed = matches!(done.handoff, Some(HandOff::Failed(_)));
    StackReport {
        text,
        command: match o.action {
            RunAction::Heat(stack::Action::Delete) => "destroy",
            _ => "deploy",
        },
        ok: o.ok && !handoff_failed,
        fields: StackFields {
            handoff,
            stack: o,
            floating_ip: fip,
            elapsed_seconds: elapsed.as_secs_f64(),
            requests,
            state_dir: state.path(),
            bundle: summary,
            ownership: done.owner,
            retry: (!o.ok).then(|| again(global, "")),
            remove: (!o.ok).then(|| again(global, "destroy")),
        },
    }
}

/// The answer for a stack Heat does not have.
#[derive(Serialize)]
struct NotFound<'a> {
    stack_name: &'a str,
    status: &'static str,
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
    let outcome = crate::runtime()?.block_on(async {
        let cloud = connect(&creds, &progress).await?;
        let follow = watch.map(|limit| (limit, &progress as &dyn stack::Watch));
        stack::show(&cloud, &name, follow).await.map_err(|e| stack_error(e, global))
    })?;
    progress.finish();
    Ok((name, outcome))
}

/// `provision status [--watch]`.
pub fn status(global: &Global, ui: &mut Ui, args: &StatusArgs) -> Result<()> {
    let watch = args.watch.then(|| Duration::from_secs(args.watch_timeout * 60));
    let (name, outcome) = show(global, ui, watch)?;
    let Some(o) = outcome else {
        ui.result("status", false, &NotFound { stack_name: &name, status: "NOT_FOUND" });
        return Err(anyhow!("no stack named {name}"));
    };
    let mut text = format!("Stack {} ({}): {}\n", o.stack.name, o.stack.id, o.status);
    text.push_str(&outputs_text(&o));
    if !o.ok {
        text.push_str(&failures_text(&o));
    }
    ui.human(&text);
    #[derive(Serialize)]
    struct Status<'a> {
        stack: &'a Outcome,
    }
    ui.result("status", o.ok, &Status { stack: &o });
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
        ui.result("outputs", false, &NotFound { stack_name: &name, status: "NOT_FOUND" });
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
        #[derive(Serialize)]
        struct Outputs<'a> {
            stack: &'a stack::StackRef,
            status: stack::StackStatus,
            tags: &'a [String],
            ownership: &'a Ownership,
            outputs: &'a std::collections::BTreeMap<String, serde_json::Value>,
        }
        let fields =
            Outputs { stack: &o.stack, status: o.status, tags: &o.tags, ownership: &o.ownership, outputs: &o.outputs };
        ui.result("outputs", true, &fields);
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
    #[derive(Serialize)]
    struct Output<'a> {
        stack: &'a stack::StackRef,
        key: &'a str,
        value: &'a serde_json::Value,
    }
    ui.result("outputs", true, &Output { stack: &o.stack, key, value });
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
    #[derive(Serialize)]
    struct Logs<'a> {
        stack: &'a stack::StackRef,
        status: stack::StackStatus,
        nodes: &'a [stack::NodeLog],
        signals: &'a [String],
    }
    ui.result("logs", true, &Logs { stack: &outcome.stack, status: outcome.status, nodes: &logs, signals: &signals });
    Ok(())
}

/// One line of `provision list`.
#[derive(Serialize)]
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
    #[derive(Serialize)]
    struct List<'a> {
        stacks: &'a [Listed<'a>],
        requests: u64,
    }
    ui.result("list", true, &List { stacks: &shown, requests });
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
    #[derive(Serialize)]
    struct Gc<'a> {
        dry_run: bool,
        items: &'a [fleet::Judged],
        requests: u64,
    }
    ui.result("gc", errors.is_empty(), &Gc { dry_run: !args.yes, items: &plan, requests });
    if errors.is_empty() { Ok(()) } else { Err(anyhow!("gc could not remove {} of them; see above", errors.len())) }
}

/// `provision destroy`: the stack, then the floating IP this tool made.
/// Only a stack provision made (tagged [`stack::OUR_TAG`]) unless
/// `--force`; on a terminal only after a yes.
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
            #[derive(Serialize)]
            struct Gone<'a> {
                #[serde(flatten)]
                stack: NotFound<'a>,
                released_floating_ip: Option<std::net::IpAddr>,
                requests: u64,
            }
            let stack = NotFound { stack_name: &name, status: "NOT_FOUND" };
            ui.result("destroy", true, &Gone { stack, released_floating_ip: released.map(|f| f.address), requests });
            Ok(())
        }
        Some(o) => {
            ui.human(&fip_line);
            report_outcome(ui, global, &o, released.as_ref(), requests, started.elapsed(), Finished::default(), &state)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;
    use provision::handoff::swarm::{Member, Report, Role};
    use provision::stack::{Failure, StackRef, StackStatus};

    use super::*;

    fn outcome(status: &str, failures: Vec<Failure>) -> Outcome {
        let ok = failures.is_empty();
        let outputs: BTreeMap<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "manager_floating_ip": "203.0.113.7", "manager_name": "myhost", "manager_private_ip": "10.20.30.5",
            "registry": "myhost.mydomain.com:5000", "worker_names": ["myhost-worker-0"],
            "worker_private_ips": ["10.20.30.6"]}))
        .unwrap();
        Outcome {
            stack: StackRef { name: "myhost".into(), id: "5e1f-stack".into() },
            action: RunAction::Heat(stack::Action::Create),
            status: StackStatus::parse(status).unwrap(),
            reason: if ok { String::new() } else { "Resource CREATE failed: timed out".into() },
            ok,
            changes: vec!["new stack".into()],
            outputs,
            failures,
            events: 31,
            heat_seconds: Some(94.4),
            tags: vec!["provision".into(), "provision-owner=ci".into()],
            ownership: Ownership { owner: Some("ci".into()), ..Default::default() },
        }
    }

    /// The report of a deploy, text and JSON, for a stack handed off and
    /// for one that failed: pinned, so a change in either shows here.
    #[test]
    fn the_deploy_report_is_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let cli =
            crate::cli::Cli::try_parse_from(["provision", "--env", "env_params.yml", "--state-dir", &root]).unwrap();
        let state = StateDir::open_with(dir.path(), "myhost", provision::state::Wait::Fail).unwrap();
        let params = provision::params::Params::load(&["examples/env_params.yml".into()]).unwrap();
        let fip = FloatingIp { id: "fip-1".into(), address: "203.0.113.7".parse().unwrap() };
        let req = bundle::Request {
            stack_name: "myhost",
            state: &state,
            templates: None,
            floating_ip: Some(fip.clone()),
            swift_credentials: None,
            now: time::OffsetDateTime::from_unix_timestamp(1_796_472_000).unwrap(),
        };
        let summary = bundle::build(&params, &req).unwrap().summary;
        let owner = Ownership { owner: Some("ci".into()), ..Default::default() };
        let formed = HandOff::Formed(Box::new(Report {
            done: vec!["swarm init on myhost".into(), "myhost-worker-0 joined".into()],
            notes: vec![],
            members: vec![Member {
                id: "n1".into(),
                hostname: "myhost".into(),
                role: Role::Manager,
                state: "ready".into(),
                addr: "10.20.30.5".into(),
                labels: BTreeMap::new(),
            }],
            networks: vec!["imixs-proxy-net".into()],
            ready: vec!["myhost".into(), "myhost-worker-0".into()],
            stacks: vec!["proxy".into()],
        }));
        let failed_node = Failure {
            resource: "manager_wait".into(),
            kind: "OS::Heat::WaitCondition".into(),
            status: "CREATE_FAILED".into(),
            reason: "WaitConditionFailure: resources.manager_wait: the cache did not start".into(),
            parent: None,
        };
        let cases = [
            ("complete", outcome("CREATE_COMPLETE", vec![]), Some(&formed)),
            ("failed", outcome("CREATE_FAILED", vec![failed_node]), None),
        ];
        for (name, o, handoff) in cases {
            let done = Finished { handoff, summary: Some(&summary), owner: Some(&owner) };
            let r = stack_report(&cli.global, &o, Some(&fip), 42, Duration::from_millis(101_500), done, &state);
            let json = crate::ui::document(r.command, r.ok, &r.fields, None);
            let shown = format!("{}\n{json:#}", r.text).replace(&root, "[state]");
            insta::assert_snapshot!(format!("deploy-report-{name}"), shown);
        }
    }
}

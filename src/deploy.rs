//! The main job, `provision --env FILE`, as ordered steps over the four
//! stages:
//!
//! preflight → floating IP → bundle → validate → apply and wait → hand-off.
//!
//! Takes the read [`Inputs`], the run's [`Options`] and a [`Reporter`] to
//! show progress on; gives what was done ([`Done`]), or the [`Step`] that
//! failed with what it left behind ([`DeployError`]). The binary only
//! builds the options and prints the result.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::bundle::{self, registry::Swift};
use crate::handoff::{self, imixs};
use crate::params::inputs::Inputs;
use crate::params::{InputError, Params, Problem, Secret, Where, credentials::Credentials};
use crate::stack::ownership::Ownership;
use crate::stack::{self, Cloud, Outcome, Snapshot, StackError, Watch, api};
use crate::state::{FloatingIp, StateDir, StateError};

/// The steps of a run, in order. Each opens one status line
/// ([`Reporter::begin`]); a failure names its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Preflight,
    FloatingIp,
    Bundle,
    Validate,
    Apply,
    HandOff,
}

impl Step {
    pub const ALL: [Step; 6] =
        [Step::Preflight, Step::FloatingIp, Step::Bundle, Step::Validate, Step::Apply, Step::HandOff];

    /// What the status line says while the step runs.
    pub fn doing(self) -> &'static str {
        match self {
            Step::Preflight => "checking the input against the cloud",
            Step::FloatingIp => "finding the manager's floating IP",
            Step::Bundle => "rendering the stack and node configs",
            Step::Validate => "having Heat validate the rendered stack",
            Step::Apply => "making the stack",
            Step::HandOff => "handing the nodes over to Docker Swarm",
        }
    }
}

/// What a run expects, for the progress line: how many resources a create
/// makes, and how long a node may take to signal.
#[derive(Debug, Default, Clone, Copy)]
pub struct Expected {
    pub resources: Option<usize>,
    pub node_timeout: Option<u64>,
}

impl Expected {
    /// `CREATE_IN_PROGRESS: 13 of 16 resources done, waiting for the
    /// manager's ready signal (up to 1800 s), 95 s`.
    pub fn describe(&self, now: &Snapshot) -> String {
        let done = match self.resources {
            Some(total) if now.status.starts_with("CREATE") => {
                format!("{} of {total} resources done", now.resources_finished.min(total))
            }
            _ => format!("{} resources done", now.resources_finished),
        };
        let waiting = match (now.signals.any(), self.node_timeout) {
            (true, Some(limit)) => format!(", waiting for {} (up to {limit} s)", now.signals.describe()),
            (true, None) => format!(", waiting for {}", now.signals.describe()),
            (false, _) => String::new(),
        };
        format!("{}: {done}{waiting}, {:.0} s", now.status, now.elapsed.as_secs_f64())
    }
}

/// Where a run shows what it does. The command line draws a spinner and
/// lines on stderr; a test can record the calls.
pub trait Reporter: Watch {
    /// A step starts.
    fn begin(&self, step: Step);
    /// A line of its own (what was allocated, what is made).
    fn line(&self, text: &str);
    /// One of the hand-off's own steps.
    fn step(&self, text: &str);
    /// What the wait can count against.
    fn expect(&self, expected: Expected);
    /// For the cloud's retry notices, which come from inside requests.
    fn notice_fn(&self) -> Box<dyn Fn(&str) + Send + Sync>;
}

/// How this run goes, beyond the env files.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Show what a run would change, and change nothing.
    pub preview: bool,
    pub check_quota: bool,
    /// Heat's timeout for the create or update.
    pub timeout_minutes: u64,
    pub rollback: bool,
    /// The operator's tags (ours are added).
    pub tags: &'a [String],
    /// Who owns the stack until when, as given for this run.
    pub ownership: Ownership,
    /// `--templates`: overrides, file by file.
    pub templates: Option<&'a Path>,
    /// The registry's Swift login, when it stores in Swift.
    pub swift: Option<Swift>,
    /// The login for `seed_registry`, when the seed images need one.
    pub seed_login: Option<(String, Secret)>,
    pub now: time::OffsetDateTime,
}

/// What a run did.
#[derive(Debug)]
pub enum Done {
    /// `drift` is None for a stack that does not exist yet.
    Preview {
        drift: Option<Vec<String>>,
        changes: BTreeMap<String, Vec<String>>,
        plan: bundle::exposure::Plan,
    },
    Applied(Box<Applied>),
}

/// A stack created, converged or left as it was; the hand-off after it.
#[derive(Debug)]
pub struct Applied {
    pub outcome: Outcome,
    /// None when the stack did not complete: nothing is tried on half-made nodes.
    pub handoff: Option<HandOff>,
    pub owner: Ownership,
    pub floating_ip: Option<FloatingIp>,
    pub requests: u64,
    pub summary: bundle::Summary,
}

/// What became of the hand-off after a complete stack.
#[derive(Debug)]
pub enum HandOff {
    Skipped(String),
    Formed(Box<handoff::swarm::Report>),
    /// The error as shown (no secret: a join token never is in one).
    Failed(String),
}

/// A step that could not be done.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct DeployError {
    pub step: Step,
    /// What the run had made on the cloud when it stopped (the next run
    /// takes it up again).
    pub left_behind: Vec<String>,
    #[source]
    pub failure: Failure,
}

/// Why a step failed, kept as the stage said it, so exit codes follow
/// the kind: bad input and quota are 2, a wait that ran out is 3.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Input(InputError),
    #[error(transparent)]
    Quota(stack::quota::QuotaError),
    #[error(transparent)]
    Stack(StackError),
    #[error(transparent)]
    Cloud(stack::CloudError),
    #[error(transparent)]
    Bundle(bundle::BundleError),
    #[error(transparent)]
    State(StateError),
}

impl From<StackError> for Failure {
    /// Names the cloud does not have, templates Heat refuses and quotas
    /// too small are bad input: nothing was made.
    fn from(e: StackError) -> Failure {
        match e {
            StackError::Input(problems) => Failure::Input(problems),
            StackError::Invalid(message) => Failure::Input(InputError(vec![Problem::new(
                Where::Rendered("template.yaml".into()),
                format!("Heat did not accept the rendered stack: {message}"),
            )])),
            StackError::Quota(q) => Failure::Quota(q),
            StackError::Cloud(c) => Failure::Cloud(c),
            other => Failure::Stack(other),
        }
    }
}

impl From<bundle::BundleError> for Failure {
    fn from(e: bundle::BundleError) -> Failure {
        Failure::Bundle(e)
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        Failure::State(e)
    }
}

impl From<stack::CloudError> for Failure {
    fn from(e: stack::CloudError) -> Failure {
        Failure::Cloud(e)
    }
}

/// What a run stopped in `step` leaves on the cloud: the floating IP once
/// it is allocated, the stack once Heat was asked to make it.
pub fn left_behind(step: Step, floating_ip: Option<&FloatingIp>, stack_name: &str, stack_existed: bool) -> Vec<String> {
    let mut left = Vec::new();
    if step >= Step::Apply || (stack_existed && step > Step::Preflight) {
        left.push(format!("stack {stack_name} in Heat"));
    }
    if let Some(f) = floating_ip.filter(|_| step > Step::FloatingIp) {
        left.push(format!("floating IP {} (kept for this stack's next run)", f.address));
    }
    left
}

/// The run so far, for [`left_behind`] when a step fails.
struct Run<'a> {
    step: Step,
    name: &'a str,
    existed: bool,
    floating_ip: Option<FloatingIp>,
    reporter: &'a dyn Reporter,
}

impl Run<'_> {
    fn begin(&mut self, step: Step) {
        self.step = step;
        self.reporter.begin(step);
    }

    fn fail(&self, e: impl Into<Failure>) -> DeployError {
        DeployError {
            step: self.step,
            left_behind: left_behind(self.step, self.floating_ip.as_ref(), self.name, self.existed),
            failure: e.into(),
        }
    }
}

/// Runs the steps in order. A stack that fails in Heat is not an error
/// here: it is an [`Applied`] whose outcome says so, and no hand-off.
pub async fn run(
    inputs: &Inputs,
    credentials: &Credentials,
    state: &StateDir,
    opts: &Options<'_>,
    reporter: &dyn Reporter,
) -> Result<Done, DeployError> {
    let params = &inputs.params;
    let name = inputs.stack_name.as_str();
    let mut run = Run { step: Step::Preflight, name, existed: false, floating_ip: None, reporter };
    run.begin(Step::Preflight);
    let cloud = Cloud::connect(credentials, reporter.notice_fn()).await.map_err(|e| run.fail(e))?;
    let (existing, found) = tokio::join!(stack::find(&cloud, name), stack::preflight(&cloud, params));
    let existing = existing.map_err(|e| run.fail(e))?;
    let found = found.map_err(|e| run.fail(e))?;
    run.existed = existing.is_some();
    // Before anything is made: a create that would run out of quota
    // halfway is refused with the table.
    if existing.is_none() && opts.check_quota {
        let fresh = stack::remembered_floating_ip(state).map_err(|e| run.fail(e))?.is_none();
        let footprint = bundle::exposure::footprint(params, fresh);
        stack::quota::check(&cloud, &footprint, &found).await.map_err(|e| run.fail(e))?;
    }
    let owner = match &existing {
        Some((_, shown)) => opts.ownership.clone().over(&Ownership::from_tags(&stack::stack_tags(shown))),
        None => opts.ownership.clone(),
    };

    run.begin(Step::FloatingIp);
    // A preview changes nothing: it uses the floating IP only if this
    // stack already has one.
    if opts.preview {
        run.floating_ip = stack::remembered_floating_ip(state).map_err(|e| run.fail(e))?;
    } else {
        let (f, new) = stack::floating_ip(&cloud, state, &found, name, &owner).await.map_err(|e| run.fail(e))?;
        if new {
            reporter.line(&format!("allocated floating IP {} for the manager", f.address));
        }
        run.floating_ip = Some(f);
    }

    run.begin(Step::Bundle);
    let req = bundle::Request {
        stack_name: name,
        state,
        templates: opts.templates,
        floating_ip: run.floating_ip.clone(),
        swift_credentials: opts.swift.clone(),
        now: opts.now,
    };
    let b = bundle::build(params, &req).map_err(|e| run.fail(e))?;
    let body =
        api::StackBody { template: b.template.clone(), environment: b.environment.clone(), files: b.files_map() };

    run.begin(Step::Validate);
    stack::validate(&cloud, &body).await.map_err(|e| run.fail(e))?;
    if opts.preview {
        let drift = match &existing {
            Some((s, _)) => Some(stack::drift(&cloud, s, &body).await.map_err(|e| run.fail(e))?),
            None => None,
        };
        if drift.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Done::Preview { drift, changes: Default::default(), plan: b.summary.plan });
        }
        let v =
            stack::preview(&cloud, name, existing.as_ref().map(|(s, _)| s), &body).await.map_err(|e| run.fail(e))?;
        return Ok(Done::Preview { drift, changes: stack::preview_changes(&v), plan: b.summary.plan });
    }

    run.begin(Step::Apply);
    let api_opts = api::Options {
        timeout_mins: Some(opts.timeout_minutes),
        rollback: opts.rollback,
        tags: stack::tags_with_ours(opts.tags, &owner),
    };
    // Heat enforces the timeout; this wait allows it a little longer to
    // report its own failure.
    let deadline = Duration::from_secs(opts.timeout_minutes * 60 + 120);
    match &existing {
        Some((s, _)) => reporter.line(&format!("stack {} exists ({})", s.name, s.id)),
        None => reporter.line(&format!("creating stack {name}:\n{}", b.summary.plan.text().trim_end())),
    }
    reporter.expect(Expected {
        resources: existing.is_none().then_some(b.summary.resources),
        node_timeout: Some(params.node_timeout),
    });
    let outcome =
        stack::apply(&cloud, name, existing, &body, &api_opts, deadline, reporter).await.map_err(|e| run.fail(e))?;

    // The hand-off only on a complete stack: a failed one is reported as
    // Heat left it.
    let handoff = match outcome.ok {
        true if params.handoff => {
            run.begin(Step::HandOff);
            Some(hand_off(params, opts, &outcome, state, reporter).await)
        }
        true => Some(HandOff::Skipped("handoff: false in the environment files".into())),
        false => None,
    };
    Ok(Done::Applied(Box::new(Applied {
        outcome,
        handoff,
        owner,
        floating_ip: run.floating_ip,
        requests: cloud.requests(),
        summary: b.summary,
    })))
}

/// The nodes from the stack's outputs, reached with the keys the bundle put
/// in their node configs (pinned, never learnt on first use).
async fn hand_off(
    params: &Params,
    opts: &Options<'_>,
    o: &Outcome,
    state: &StateDir,
    reporter: &dyn Reporter,
) -> HandOff {
    let formed = async {
        let nodes = handoff::Nodes::from_outputs(&params.hostname, &o.outputs)?;
        let templates = crate::templates::Templates::load(opts.templates)
            .map_err(|e| handoff::HandoffError::Swarm(e.to_string()))?;
        let stacks = imixs::render(&templates, &params.fqdn(), &imixs::Images::default())?;
        let dir = state.file(crate::state::layout::IMIXS_DIR);
        imixs::write_local(&dir, &stacks)?;
        reporter.line(&format!("Imixs-Cloud configuration directory: {}", dir.display()));
        reporter.line(&format!(
            "hand-off: manager {} at {}, {} workers behind it",
            nodes.manager.name,
            nodes.manager.public_address,
            nodes.workers.len()
        ));
        let seed = seed_of(params, state, opts.seed_login.clone())?;
        handoff::for_stack(state, &nodes, &stacks, seed.as_ref(), handoff::ssh::Settings::default(), &|m| {
            reporter.step(m)
        })
        .await
    };
    match formed.await {
        Ok(r) => HandOff::Formed(Box::new(r)),
        Err(e) => HandOff::Failed(e.to_string()),
    }
}

/// `seed_images` as the hand-off carries them out: into the private
/// registry with the stack's login, from `seed_registry` with the login
/// the operator gave (never one from a file).
fn seed_of(
    params: &Params,
    state: &StateDir,
    from_login: Option<(String, Secret)>,
) -> Result<Option<handoff::seed::Seed>, handoff::HandoffError> {
    if params.seed.images.is_empty() {
        return Ok(None);
    }
    let password = state
        .read_private(crate::state::layout::REGISTRY_PASSWORD)?
        .ok_or_else(|| handoff::HandoffError::Swarm("the registry password is not in the state directory".into()))?;
    let into = handoff::seed::Login {
        registry: format!("{}:{}", params.fqdn(), bundle::REGISTRY_PORT),
        user: params.registry.user.clone(),
        password: Secret::new(password.trim()),
    };
    let from = params.seed.registry.as_ref().map(|registry| {
        let login =
            from_login.map(|(user, password)| handoff::seed::Login { registry: registry.clone(), user, password });
        (registry.clone(), login)
    });
    Ok(Some(handoff::seed::Seed { images: params.seed.images.clone(), into, from }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::events::Signals;

    #[test]
    fn the_progress_line_says_n_of_m_and_what_it_waits_for() {
        let expected = Expected { resources: Some(16), node_timeout: Some(1800) };
        let mut now = Snapshot {
            status: "CREATE_IN_PROGRESS",
            resources_finished: 13,
            signals: Signals { manager: true, workers: 2 },
            elapsed: Duration::from_secs(95),
        };
        assert_eq!(
            expected.describe(&now),
            "CREATE_IN_PROGRESS: 13 of 16 resources done, waiting for the manager's and 2 workers' ready signals \
             (up to 1800 s), 95 s"
        );
        // An update changes some resources, not all: no total.
        now.status = "UPDATE_IN_PROGRESS";
        now.signals = Signals::default();
        assert_eq!(expected.describe(&now), "UPDATE_IN_PROGRESS: 13 resources done, 95 s");
        let unknown = Expected::default();
        now.status = "CREATE_IN_PROGRESS";
        assert_eq!(unknown.describe(&now), "CREATE_IN_PROGRESS: 13 resources done, 95 s");
    }

    #[test]
    fn a_failed_step_names_what_it_left_on_the_cloud() {
        let fip = FloatingIp { id: "f1".into(), address: "203.0.113.9".parse().unwrap() };
        let left = |step, fip: Option<&FloatingIp>, existed| left_behind(step, fip, "web", existed);
        // Nothing is made before the floating IP; a preflight failure leaves
        // even an existing stack as it was, so it says nothing.
        assert!(left(Step::Preflight, None, false).is_empty());
        assert!(left(Step::Preflight, None, true).is_empty());
        assert!(left(Step::FloatingIp, Some(&fip), false).is_empty(), "the floating IP step failed: none to keep");
        assert_eq!(left(Step::Bundle, Some(&fip), false), ["floating IP 203.0.113.9 (kept for this stack's next run)"]);
        assert_eq!(left(Step::Validate, Some(&fip), true).len(), 2, "an existing stack stays too");
        assert_eq!(
            left(Step::Apply, Some(&fip), false),
            ["stack web in Heat", "floating IP 203.0.113.9 (kept for this stack's next run)"]
        );
        assert_eq!(left(Step::Apply, None, false), ["stack web in Heat"]);
        // The steps run in the order the module doc gives.
        let mut sorted = Step::ALL;
        sorted.sort();
        assert_eq!(sorted, Step::ALL);
        assert_eq!(Step::ALL.map(Step::doing).iter().collect::<std::collections::BTreeSet<_>>().len(), 6);
    }

    /// The run stops at the first failing step and says which: a cloud
    /// that cannot be reached fails the preflight, before anything is made.
    #[test]
    fn an_unreachable_cloud_fails_the_preflight_and_leaves_nothing() {
        use std::sync::Mutex;
        struct Seen(Mutex<Vec<String>>);
        impl Watch for Seen {
            fn event(&self, _: &stack::Event) {}
            fn progress(&self, _: &Snapshot) {}
        }
        impl Reporter for Seen {
            fn begin(&self, step: Step) {
                self.0.lock().unwrap().push(format!("{step:?}"));
            }
            fn line(&self, text: &str) {
                self.0.lock().unwrap().push(text.into());
            }
            fn step(&self, text: &str) {
                self.0.lock().unwrap().push(text.into());
            }
            fn expect(&self, _: Expected) {}
            fn notice_fn(&self) -> Box<dyn Fn(&str) + Send + Sync> {
                Box::new(|_| {})
            }
        }
        // A port nothing listens on: taken, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("env.yml");
        std::fs::write(
            &env,
            format!(
                "parameters:\n  hostname: web\n  domain: example.com\n  server_key: k\n  server_flavor: f\n  \
                 server_image: i\n  fip_network: n\n  os_authurl: http://127.0.0.1:{port}/v3\n  os_username: u\n  \
                 os_password: p\n"
            ),
        )
        .unwrap();
        let selection = crate::params::inputs::Selection { env_files: vec![env], ..Default::default() };
        let inputs = crate::params::inputs::load(&selection, &|_| None).unwrap();
        let state = StateDir::open_with(&dir.path().join("state"), "web", crate::state::Wait::Fail).unwrap();
        let opts = Options {
            preview: false,
            check_quota: true,
            timeout_minutes: 1,
            rollback: false,
            tags: &[],
            ownership: Ownership::default(),
            templates: None,
            swift: None,
            seed_login: None,
            now: time::OffsetDateTime::now_utc(),
        };
        let seen = Seen(Mutex::new(Vec::new()));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let creds = inputs.credentials.clone().unwrap();
        let e = rt.block_on(run(&inputs, &creds, &state, &opts, &seen)).unwrap_err();
        assert_eq!(e.step, Step::Preflight);
        assert!(e.left_behind.is_empty());
        assert!(matches!(e.failure, Failure::Cloud(_)), "{e:?}");
        assert_eq!(*seen.0.lock().unwrap(), ["Preflight"], "no later step began");
    }
}

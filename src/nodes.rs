//! The commands that work on the nodes over SSH: `provision ssh` and
//! `provision handoff`. The nodes are the stack's (from Heat's outputs) or
//! an inventory file's (`--nodes`). Each reads its local input fully first
//! (the inventory, the pinned host keys, the client key; a problem there
//! exits 2 before any request or connection), then connects.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use provision::handoff::ssh::{Cmd, Connector, Settings, Stream};
use provision::handoff::swarm::Waits;
use provision::handoff::{self, Nodes, StackNodes, imixs};
use provision::keys;
use provision::params::{InputError, Problem, Where};
use provision::state::{StateDir, layout};
use provision::templates::Templates;

use crate::cli::{Global, HandoffArgs, NodesArgs, SshArgs};
use crate::input::{again, connect, load, load_for_name, need_credentials, state_dir, state_view};
use crate::ui::{Progress, Ui};

/// A remote command ended with a status other than 0; `provision ssh`
/// exits with it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteExit {
    pub code: u8,
    pub message: String,
}

fn input(at: Where, message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    let mut p = Problem::new(at, message);
    if let Some(h) = hint {
        p = p.hint(h);
    }
    InputError(vec![p]).into()
}

/// The stack's state directory, when the command line names a stack;
/// locked if the command `writes` it.
fn stack_state(global: &Global, ui: &mut Ui, writes: bool) -> Result<Option<StateDir>> {
    let name = match (&global.name, global.env.is_empty()) {
        (Some(n), _) => n.clone(),
        (None, false) => load(global, ui)?.stack_name,
        (None, true) => return Ok(None),
    };
    Ok(Some(if writes { state_dir(global, &name)? } else { state_view(global, &name)? }))
}

/// The nodes, and how to reach them.
struct Access {
    nodes: Nodes,
    connector: Connector,
    /// `hostname.domain` when the nodes are a stack's.
    fqdn: Option<String>,
    /// Where the node list came from, for errors about a node name.
    source: PathBuf,
    /// The stack's state directory, when the nodes are a stack's.
    state: Option<StateDir>,
}

fn access(global: &Global, args: &NodesArgs, ui: &mut Ui, writes: bool) -> Result<Access> {
    let settings = Settings { attempts: args.ssh_attempts, ..Settings::default() };
    let Some(inventory) = &args.nodes else { return stack_access(global, args, ui, settings, writes) };
    let nodes =
        Nodes::from_inventory_file(inventory).map_err(|e| input(Where::file(inventory), e.to_string(), None))?;
    let state =
        if args.host_keys.is_none() || args.identity.is_none() { stack_state(global, ui, writes)? } else { None };
    let no_stack = "give --name STACK (its state directory holds the keys), or --host-keys DIR and --identity FILE";

    let pins_dir = match (&args.host_keys, &state) {
        (Some(d), _) => d.clone(),
        (None, Some(s)) => s.file(layout::HOST_KEYS),
        (None, None) => return Err(input(Where::flag("--host-keys"), "no pinned host keys", Some(no_stack))),
    };
    let names = nodes.names();
    let pins = keys::load_pins(&pins_dir, &names).map_err(|e| input(Where::file(&pins_dir), e.to_string(), None))?;

    let identity: PathBuf = match (&args.identity, &state) {
        (Some(f), _) => f.clone(),
        (None, Some(s)) if keys::client_key_path(s).is_file() => keys::client_key_path(s),
        _ => match &nodes.client_key {
            Some(f) => f.clone(),
            None => return Err(input(Where::flag("--identity"), "no client key", Some(no_stack))),
        },
    };
    let key = keys::load_client(&identity).map_err(|e| input(Where::file(&identity), e.to_string(), None))?;
    let connector = Connector::new(&nodes, key, &identity.display().to_string(), pins, settings);
    Ok(Access { nodes, connector, fqdn: None, source: inventory.clone(), state })
}

/// The stack's own nodes: the list from Heat's outputs, the pins and the
/// client key from the state directory where the bundle made them. The
/// keys are read before Heat is asked, so a missing key makes no request.
fn stack_access(global: &Global, args: &NodesArgs, ui: &mut Ui, settings: Settings, writes: bool) -> Result<Access> {
    let mut key = None;
    let mut identity = PathBuf::new();
    let mut state = None;
    let found = stack_nodes(global, ui, writes, |s| {
        identity = args.identity.clone().unwrap_or_else(|| keys::client_key_path(s));
        key = Some(keys::load_client(&identity).map_err(|e| {
            input(
                Where::file(&identity),
                e.to_string(),
                Some("the keys are made when provision renders the stack; is --state-dir the one it was made with?"),
            )
        })?);
        state = Some(s.clone());
        Ok(())
    })?;
    let (Some(key), Some(state)) = (key, state) else { unreachable!("stack_nodes runs the check first") };
    let nodes = found.nodes;
    let pins = match &args.host_keys {
        Some(d) => keys::load_pins(d, &nodes.names()).map_err(|e| input(Where::file(d), e.to_string(), None))?,
        None => handoff::stack_pins(&state, &nodes)?,
    };
    let connector = Connector::new(&nodes, key, &identity.display().to_string(), pins, settings);
    Ok(Access {
        nodes,
        connector,
        fqdn: Some(found.fqdn),
        source: PathBuf::from(format!("stack {}", found.name)),
        state: Some(state),
    })
}

/// The stack's nodes, from Heat's outputs. `check` runs on what was read
/// locally (the stack's state directory) before anything is sent, so bad
/// input still makes no request. `writes` locks the state for the caller,
/// and asks for a complete stack (the hand-off).
fn stack_nodes(
    global: &Global,
    ui: &mut Ui,
    writes: bool,
    check: impl FnOnce(&StateDir) -> Result<()>,
) -> Result<StackNodes> {
    let (name, given, named) = if global.env.is_empty() {
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
        Ok::<_, anyhow::Error>(provision::stack::show(&cloud, &name, None).await?)
    })?;
    progress.finish();
    let o = outcome.ok_or_else(|| anyhow::anyhow!("no stack named {name}; make it first: {}", again(global, "")))?;
    Ok(StackNodes::from_outcome(&o, named, writes)?)
}

/// `provision ssh [NODE] [-- COMMAND]`: the command's output as it comes,
/// or a shell; the exit status of either.
pub fn ssh(global: &Global, args: &SshArgs, ui: &mut Ui) -> Result<()> {
    if args.command.is_empty() && ui.json {
        return Err(input(
            Where::flag("--output"),
            "a shell has no JSON output",
            Some("give the command to run after `--`, e.g. provision ssh --output json -- docker node ls"),
        ));
    }
    let a = access(global, &args.nodes, ui, false)?;
    let node = args.node.clone().unwrap_or_else(|| a.nodes.manager.name.clone());
    if !a.nodes.has(&node) {
        return Err(input(
            Where::file(&a.source),
            format!("no node named `{node}`"),
            Some(&format!("the nodes are: {}", a.nodes.names().join(", "))),
        ));
    }
    let shell = args.command.is_empty();
    let cmd = Cmd::new(if shell { "a shell".to_string() } else { args.command.join(" ") });
    let json = ui.json;
    let notice = |m: &str| eprintln!("note: {m}");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut sink = |s: Stream, data: &[u8]| match (s, json) {
        (Stream::Stdout, false) => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(data).and_then(|_| o.flush());
        }
        (Stream::Stderr, false) => {
            let _ = std::io::stderr().lock().write_all(data);
        }
        (Stream::Stdout, true) => stdout.extend_from_slice(data),
        (Stream::Stderr, true) => stderr.extend_from_slice(data),
    };
    let status = crate::runtime()?.block_on(async {
        let manager = a.connector.manager(&a.nodes.manager, &notice).await?;
        // The worker's connection runs inside the manager's: both stay open
        // until the command is done.
        let worker = match a.nodes.worker(&node) {
            Some(w) => Some(a.connector.worker(&manager, w, &notice).await?),
            None => None,
        };
        let link = worker.as_ref().unwrap_or(&manager);
        let status = if shell {
            let terminal = crate::terminal::terminal();
            // Raw only once connected: the waiting notices above print as usual.
            let raw = terminal.as_ref().and_then(|_| crate::terminal::RawMode::enter());
            let status = link.shell(terminal.as_ref(), crate::terminal::input(terminal.is_some()), &mut sink).await;
            drop(raw);
            status?
        } else {
            link.stream(&cmd, &mut sink).await?
        };
        if let Some(w) = worker {
            w.close().await;
        }
        manager.close().await;
        Ok::<_, handoff::HandoffError>(status)
    })?;
    #[derive(Serialize)]
    struct Ran<'a> {
        node: &'a str,
        exit_status: Option<u32>,
        stdout: std::borrow::Cow<'a, str>,
        stderr: std::borrow::Cow<'a, str>,
    }
    let ran = Ran {
        node: &node,
        exit_status: status,
        stdout: String::from_utf8_lossy(&stdout),
        stderr: String::from_utf8_lossy(&stderr),
    };
    ui.result("ssh", status == Some(0), &ran);
    match status {
        Some(0) => Ok(()),
        Some(s) => Err(RemoteExit {
            code: u8::try_from(s).unwrap_or(1).max(1),
            message: format!("{node}: `{}` exited with status {s}", cmd.shown),
        }
        .into()),
        None => Err(anyhow::anyhow!("{node}: `{}` ended without an exit status (killed?)", cmd.shown)),
    }
}

/// `provision handoff`: the swarm formed, or found formed.
pub fn handoff(global: &Global, args: &HandoffArgs, ui: &mut Ui) -> Result<()> {
    let started = Instant::now();
    let a = access(global, &args.nodes, ui, true)?;
    let n = &a.nodes;
    let progress = Progress::new();
    progress.print(&format!(
        "hand-off: manager {} at {}, {} workers behind it",
        n.manager.name,
        n.manager.public_address,
        n.workers.len()
    ));
    // The inventory may name an image every node already holds (the
    // harness imports one offline: no registry is reachable there); the
    // example app runs from it.
    let mut images = imixs::Images::default();
    if let Some(image) = args
        .nodes
        .nodes
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("image").and_then(|i| i.as_str()).map(str::to_string))
    {
        images.app = image;
    }
    let templates = Templates::load(global.templates.as_deref())?;
    // From an inventory no domain is known: the manager's name stands for it.
    let stacks = imixs::render(&templates, a.fqdn.as_deref().unwrap_or(&n.manager.name), &images)?;
    // Kept to the end: the lock of the state written to.
    let state = match (&args.out, &a.state) {
        (None, None) => stack_state(global, ui, true)?,
        _ => a.state.clone(),
    };
    let out = args.out.clone().or_else(|| state.as_ref().map(|s| s.file(layout::IMIXS_DIR)));
    if let Some(dir) = &out {
        imixs::write_local(dir, &stacks)?;
    }
    let report =
        crate::runtime()?
            .block_on(handoff::form(n, &a.connector, &Waits::default(), &stacks, None, &|m| progress.print(m)))?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let mut text = if report.changed() {
        format!("Swarm converged in {seconds:.1} s: {} changes.\n", report.done.len())
    } else {
        format!("Swarm already formed: nothing to do ({seconds:.1} s).\n")
    };
    text.push_str(&format!("  nodes     {} Ready: {}\n", report.ready.len(), report.ready.join(", ")));
    text.push_str(&format!("  networks  {}\n", report.networks.join(", ")));
    text.push_str(&format!("  stacks    {}\n", report.stacks.join(", ")));
    if let Some(dir) = &out {
        text.push_str(&format!("  config    {}\n", dir.display()));
    }
    for note in &report.notes {
        text.push_str(&format!("  note      {note}\n"));
    }
    ui.human(&text);
    #[derive(Serialize)]
    struct Formed<'a> {
        changed: bool,
        #[serde(flatten)]
        report: &'a handoff::swarm::Report,
        config_dir: Option<&'a PathBuf>,
        seconds: f64,
    }
    ui.result(
        "handoff",
        true,
        &Formed { changed: report.changed(), report: &report, config_dir: out.as_ref(), seconds },
    );
    Ok(())
}

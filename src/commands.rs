//! One function per command: turn the parsed command line into the
//! library's inputs, call the pipeline, and report through [`Ui`].

use anyhow::{Context, Result};
use clap::CommandFactory;

use provision::bundle::{self, FloatingIp};
use provision::params::{InputError, Params, Problem, Where, credentials, defs};
use provision::state::StateDir;

use crate::cli::{CheckArgs, Cli, Command, Global, ManArgs, RenderArgs};
use crate::ui::Ui;

pub fn run(cli: &Cli, ui: &mut Ui) -> Result<()> {
    let Some(command) = &cli.command else { return crate::live::deploy(&cli.global, &cli.deploy, ui) };
    if let Some(flag) = cli.deploy.given() {
        return Err(InputError(vec![Problem::new(
            Where::flag(flag),
            format!(
                "{flag} is for deploying (`provision --env FILE {flag}`); put a command's own options after its name"
            ),
        )])
        .into());
    }
    match command {
        Command::Deploy(args) => crate::live::deploy(&cli.global, args, ui),
        Command::Render(args) => render(&cli.global, args, ui),
        Command::Check(args) => check(&cli.global, args, ui),
        Command::Status(args) => crate::live::status(&cli.global, ui, args),
        Command::Outputs(args) => crate::live::outputs(&cli.global, ui, args),
        Command::Destroy(args) => crate::live::destroy(&cli.global, args, ui),
        Command::List(args) => crate::live::list(&cli.global, args, ui),
        Command::Gc(args) => crate::live::gc(&cli.global, args, ui),
        Command::Logs(args) => crate::live::logs(&cli.global, ui, args),
        Command::Ssh(args) => crate::nodes::ssh(&cli.global, args, ui),
        Command::Handoff(args) => crate::nodes::handoff(&cli.global, args, ui),
        Command::Params { markdown } => {
            if *markdown {
                ui.human(&defs::markdown_table());
            } else {
                let mut out = String::new();
                for d in defs::DEFS {
                    let default = d.default.map(|v| format!(" [default: {v}]")).unwrap_or_default();
                    let req = if d.required { " (required)" } else { "" };
                    out.push_str(&format!("{:<24}{}{req}{default}\n{:<24}{}\n", d.name, d.kind.describe(), "", d.doc));
                }
                ui.human(&out);
            }
            let list: Vec<_> = defs::DEFS
                .iter()
                .map(|d| serde_json::json!({"name": d.name, "required": d.required, "default": d.default, "expects": d.kind.describe(), "doc": d.doc}))
                .collect();
            ui.json(&serde_json::json!({"ok": true, "parameters": list}));
            Ok(())
        }
        Command::Clouds { names } => clouds(*names, ui),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "provision", &mut script);
            let script = String::from_utf8(script).context("the completion script is text")?;
            print!("{}", crate::cli::with_cloud_names(*shell, &script));
            Ok(())
        }
        Command::Man(args) => man(args, ui),
    }
}

fn clouds(names: bool, ui: &mut Ui) -> Result<()> {
    let list = credentials::clouds(&|k| crate::env_var(k)).map_err(|p| InputError(vec![p]))?;
    if names {
        ui.human(&list.iter().map(|c| format!("{}\n", c.name)).collect::<String>());
    } else if list.is_empty() {
        ui.human(
            "no clouds.yaml found (looked in ./, ~/.config/openstack/, /etc/openstack/ and OS_CLIENT_CONFIG_FILE)\n",
        );
    } else {
        let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut text = format!("Clouds in {}:\n", list[0].file.display());
        for c in &list {
            text.push_str(&format!(
                "  {:<width$}  {}  {}\n",
                c.name,
                c.auth_url.as_deref().unwrap_or("(no auth_url)"),
                c.region.as_deref().map(|r| format!("region {r}")).unwrap_or_default()
            ));
        }
        ui.human(&text);
    }
    ui.json(&serde_json::json!({"ok": true, "command": "clouds", "clouds": list, "warnings": ui.warnings()}));
    Ok(())
}

/// The input stage shared by every command that works on a stack: the
/// parameters, the credentials (if any), the stack name.
pub struct Loaded {
    pub params: Params,
    pub credentials: Option<credentials::Credentials>,
    pub stack_name: String,
}

/// A command line that cannot work, found before anything is read or made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

pub fn load(global: &Global, ui: &mut Ui) -> Result<Loaded> {
    if let Some(dir) = &global.templates
        && !dir.is_dir()
    {
        let what = if dir.exists() { "is not a folder" } else { "does not exist" };
        return Err(Usage(format!(
            "--templates {}: {what}; give a folder laid out like templates/ in provision's source",
            dir.display()
        ))
        .into());
    }
    let mut params = Params::load(&global.env)?;
    if let Some(suffix) = &global.name_suffix {
        params.with_name_suffix(suffix, Where::flag("--name-suffix")).map_err(|p| InputError(vec![p]))?;
    }
    for w in &params.warnings {
        ui.warn(w);
    }
    let credentials = resolve_credentials(global, &params.env_credentials, ui)?;
    tracing::debug!(params = ?params, source = ?credentials.as_ref().map(|c| &c.source), "input");
    let stack_name = match &global.name {
        Some(n) => suffixed(n, global.name_suffix.as_deref()),
        None => params.hostname.clone(),
    };
    check_stack_name(&stack_name)?;
    Ok(Loaded { params, credentials, stack_name })
}

/// The credentials the flags, the environment and the env files' `os_*`
/// parameters give, in the OpenStack client's order; warnings said.
pub fn resolve_credentials(
    global: &Global,
    from_env_files: &credentials::EnvFileCredentials,
    ui: &mut Ui,
) -> Result<Option<credentials::Credentials>, InputError> {
    let req = credentials::Request {
        os_cloud: global.os_cloud.clone(),
        cacert: global.os_cacert.clone(),
        insecure: global.insecure,
    };
    let resolved =
        credentials::resolve(&req, &|k| crate::env_var(k), from_env_files).map_err(|p| InputError(vec![p]))?;
    for w in &resolved.warnings {
        ui.warn(w);
    }
    Ok(resolved.credentials)
}

/// A stack name given with --name, with --name-suffix after it.
pub fn suffixed(name: &str, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) => format!("{name}-{s}"),
        None => name.to_string(),
    }
}

/// What the stack will open to the whole world, said before it is made
/// (render and deploy): the default stays compatible, the warning says
/// how to close it.
pub fn warn_open(params: &Params, ui: &mut Ui) {
    let ports = provision::bundle::exposure::plan(params, None).world_open_admin_ports();
    if !ports.is_empty() {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        ui.warn(&format!(
            "the manager's SSH and management UI ports ({}) are open to {}; \
             set ssh_allowed_cidr to the addresses you work from",
            ports.join(", "),
            params.ssh_allowed_cidr
        ));
    }
}

/// Heat's rule for stack names: a letter first, then letters, digits, `_-.`.
pub fn check_stack_name(name: &str) -> Result<(), InputError> {
    let ok = name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(InputError(vec![
            Problem::new(Where::flag("--name"), format!("`{name}` is not a valid stack name"))
                .hint("a stack name starts with a letter and has only letters, digits, `_`, `-` and `.`; pass --name"),
        ]))
    }
}

fn render(global: &Global, args: &RenderArgs, ui: &mut Ui) -> Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(Usage(format!(
            "--out {}: is a file; give a folder (made if missing) for the bundle",
            args.out.display()
        ))
        .into());
    }
    let loaded = load(global, ui)?;
    warn_open(&loaded.params, ui);
    let floating_ip = args.floating_ip.as_deref().map(parse_floating_ip).transpose()?;
    let state = state_dir(global, &loaded.stack_name)?;
    let swift_credentials = swift_credentials(&loaded, ui)?;
    let req = bundle::Request {
        stack_name: &loaded.stack_name,
        state: &state,
        templates: global.templates.as_deref(),
        floating_ip,
        swift_credentials,
        now: time::OffsetDateTime::now_utc(),
    };
    let b = bundle::build(&loaded.params, &req)?;
    let written = b.write(&args.out).with_context(|| format!("writing the bundle to {}", args.out.display()))?;
    if let bundle::certs::Outcome::Reissued(why) = &b.summary.server_certificate {
        ui.warn(&format!(
            "the registry certificate was issued again ({why}); nodes made before this run still have the old one"
        ));
    }
    let source = loaded.credentials.as_ref().map(|c| c.source.to_string());
    let s = &b.summary;
    let summary = format!(
        "Rendered stack {name} into {out}\n  \
         registry      {reg} (user {user}, password in {pw})\n  \
         cache         {cache}\n  \
         certificate   {names} ({cert}; CA {ca}, trust it with {cafile})\n  \
         nodes         1 manager + {workers} workers, {network}\n  \
         storage       {storage}\n  \
         credentials   {creds}\n\
         {plan}\
         Deploy it with:\n  openstack stack create -t {out}/template.yaml -e {out}/environment.yaml {name}\n",
        name = s.stack_name,
        out = args.out.display(),
        reg = s.registry,
        user = s.registry_user,
        pw = s.registry_password_file.display(),
        cache = s.cache,
        names = s.certificate_names.join(", "),
        cert = s.server_certificate,
        ca = s.ca,
        cafile = s.ca_cert_file.display(),
        workers = s.workers,
        network = s.network,
        storage = s.storage,
        creds = source.as_deref().unwrap_or("none found (not needed to render)"),
        plan = s.plan.text(),
    );
    let summary_file = args.out.join("summary.txt");
    provision::state::write_file(&summary_file, summary.as_bytes(), provision::state::Mode::Public)?;
    ui.human(&summary);
    ui.json(&serde_json::json!({
        "ok": true,
        "command": "render",
        "bundle": s,
        "files": written.iter().chain(std::iter::once(&summary_file)).collect::<Vec<_>>(),
        "credentials": {"source": source},
        "warnings": ui.warnings(),
    }));
    Ok(())
}

fn state_root(global: &Global) -> std::path::PathBuf {
    global.state_dir.clone().unwrap_or_else(|| StateDir::default_root(&|k| crate::env_var(k)))
}

/// The stack's state for a command that writes it: locked until the
/// returned value (and its clones) are dropped.
pub fn state_dir(global: &Global, stack: &str) -> Result<StateDir> {
    let wait =
        if global.no_wait { provision::state::Wait::Fail } else { provision::state::Wait::Block(|m| eprintln!("{m}")) };
    Ok(StateDir::open_with(&state_root(global), stack, wait)?)
}

/// Whether this machine's state directory has the stack (made or tried by
/// a run here).
pub fn state_known(global: &Global, stack: &str) -> bool {
    std::fs::symlink_metadata(state_root(global).join(stack)).is_ok()
}

/// The stack's state for a command that only reads it (`check`, `ssh`):
/// checked as for writing, not locked, so a long `ssh` session holds up
/// no render.
pub fn state_view(global: &Global, stack: &str) -> Result<StateDir> {
    Ok(StateDir::inspect(&state_root(global), stack)?)
}

fn check(global: &Global, args: &CheckArgs, ui: &mut Ui) -> Result<()> {
    use provision::check;
    let loaded = load(global, ui)?;
    let state = state_view(global, &loaded.stack_name)?;
    let missing = |what: &str| {
        anyhow::anyhow!(
            "no {what} in {} for stack {}: run `provision render` (or deploy) with this state directory first",
            state.path().display(),
            loaded.stack_name
        )
    };
    let own = loaded.params.own_certificate.as_ref();
    let ca_pem = match own {
        Some(o) => o.ca_pem.clone(),
        None => state.read(bundle::certs::CA_CRT)?.ok_or_else(|| missing("CA"))?,
    };
    let password = state.read_private(bundle::REGISTRY_PASSWORD)?.ok_or_else(|| missing("registry password"))?;
    let fqdn = loaded.params.fqdn();
    let runtime = crate::runtime()?;
    let address = match args.address {
        Some(a) => a,
        None => runtime
            .block_on(tokio::net::lookup_host((fqdn.as_str(), 0)))
            .ok()
            .and_then(|mut addrs| addrs.next())
            .map(|a| a.ip())
            .ok_or_else(|| anyhow::anyhow!("cannot resolve {fqdn}; pass --address with the manager's floating IP"))?,
    };
    let target = check::Target {
        fqdn: fqdn.clone(),
        address,
        registry_port: args.registry_port,
        cache_port: args.cache_port,
        ca_pem,
        user: loaded.params.registry.user.clone(),
        password: provision::params::Secret::new(password.trim()),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    let report = runtime.block_on(check::run(&target));
    let ca_file = own.map_or_else(|| state.file(bundle::certs::CA_CRT), |o| o.ca_file.clone()).display().to_string();
    let pw_file = state.file(bundle::REGISTRY_PASSWORD).display().to_string();
    let hints = check::client_hints(&fqdn, args.registry_port, args.cache_port, &target.user, &pw_file);
    let mut text = String::new();
    for s in &report.steps {
        text.push_str(&format!("{} {:<34} {}\n", if s.ok { "ok  " } else { "FAIL" }, s.name, s.detail));
    }
    if report.ok() {
        text.push_str("\nTo use them from a Docker host:\n");
        for p in &hints.certs_d {
            let dir = p.trim_end_matches("/ca.crt");
            text.push_str(&format!("  sudo mkdir -p {dir} && sudo cp {ca_file} {p}\n"));
        }
        text.push_str(&format!("  /etc/docker/daemon.json: {}\n", hints.daemon_json));
        text.push_str(&format!("  {}\n", hints.login));
    }
    ui.human(&text);
    ui.json(&serde_json::json!({
        "ok": report.ok(), "command": "check", "steps": report.steps, "repositories": report.repositories,
        "client": hints, "ca_file": ca_file, "warnings": ui.warnings(),
    }));
    if report.ok() {
        Ok(())
    } else {
        let first = report.steps.iter().find(|s| !s.ok).expect("not ok means a failed step");
        Err(anyhow::anyhow!("registry check failed: {}: {}", first.name, first.detail))
    }
}

fn parse_floating_ip(s: &str) -> Result<FloatingIp, InputError> {
    let bad = || {
        InputError(vec![
            Problem::new(Where::flag("--floating-ip"), format!("`{s}` is not ID=ADDRESS"))
                .hint("for example --floating-ip 6f1c...=203.0.113.10"),
        ])
    };
    let (id, addr) = s.split_once('=').ok_or_else(bad)?;
    let address = addr.parse().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(FloatingIp { id: id.to_string(), address })
}

/// Swift storage logs in as the operator, so the node gets their
/// credentials; say so, because that is a secret leaving the machine.
/// The registry's Swift driver takes a user and password only, so
/// application credentials are input that cannot work (exit 2).
pub fn swift_credentials(loaded: &Loaded, ui: &mut Ui) -> Result<Option<bundle::registry::Swift>, InputError> {
    let provision::params::Storage::Swift { container } = &loaded.params.registry.storage else { return Ok(None) };
    let Some(c) = loaded.credentials.as_ref() else { return Ok(None) };
    let credentials::Auth::Password { username, password, user_domain } = &c.auth else {
        return Err(InputError(vec![
            Problem::new(
                loaded.params.origin("registry_storage"),
                format!(
                    "registry_storage: swift logs the registry in with a user name and password, and the credentials from {} are an application credential",
                    c.source
                ),
            )
            .hint("give password credentials (a user made for the registry is best), or use registry_storage: local"),
        ]));
    };
    ui.warn("registry_storage: swift puts your OpenStack password in the manager's node config (as the seed did); prefer an account made for the registry");
    Ok(Some(bundle::registry::Swift {
        authurl: c.auth_url.clone(),
        username: username.clone(),
        password: password.expose().to_string(),
        tenant: c.project.as_ref().and_then(|p| p.name.clone()),
        domain: user_domain.clone(),
        region: c.region.clone(),
        container: container.clone(),
    }))
}

/// `provision man`: one page on stdout, or every page into a folder. Each
/// page ends with what clap does not write: ENVIRONMENT and EXIT STATUS.
fn man(args: &ManArgs, ui: &mut Ui) -> Result<()> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let mut pages = vec![top.clone()];
    pages.extend(top.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    let page = |cmd: &clap::Command| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut out).context("rendering the man page")?;
        out.extend_from_slice(crate::cli::man_tail().as_bytes());
        Ok(out)
    };
    let Some(dir) = &args.dir else {
        let wanted = args.command.as_deref().map(|c| format!("provision-{c}"));
        let cmd = match &wanted {
            None => &pages[0],
            Some(w) => pages.iter().find(|p| p.get_display_name() == Some(w.as_str())).ok_or_else(|| {
                let names: Vec<_> = top.get_subcommands().map(|c| c.get_name().to_string()).collect();
                Usage(format!(
                    "no command `{}`; the commands are: {}",
                    args.command.as_deref().unwrap_or(""),
                    names.join(", ")
                ))
            })?,
        };
        std::io::Write::write_all(&mut std::io::stdout(), &page(cmd)?).context("writing the man page")?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let mut written = Vec::new();
    for cmd in &pages {
        let file = dir.join(format!("{}.1", cmd.get_display_name().unwrap_or(cmd.get_name())));
        provision::state::write_file(&file, &page(cmd)?, provision::state::Mode::Public)?;
        written.push(file);
    }
    ui.human(&format!("Wrote {} man pages into {}\n", written.len(), dir.display()));
    ui.json(&serde_json::json!({"ok": true, "command": "man", "written": written}));
    Ok(())
}

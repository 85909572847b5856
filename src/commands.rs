//! One function per command: turn the parsed command line into the
//! library's inputs, call the pipeline, and report through [`Ui`].

use anyhow::{Context, Result};
use clap::CommandFactory;

use provision::bundle::{self, FloatingIp};
use provision::params::{InputError, Params, Problem, Where, credentials, defs};
use provision::state::StateDir;

use crate::cli::{Cli, Command, Global, RenderArgs};
use crate::ui::Ui;

pub fn run(cli: &Cli, ui: &mut Ui) -> Result<()> {
    match &cli.command {
        Command::Render(args) => render(&cli.global, args, ui),
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
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "provision", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).context("writing the man page")?;
            Ok(())
        }
    }
}

/// The input stage shared by every command that works on a stack: the
/// parameters, the credentials (if any), the stack name.
struct Loaded {
    params: Params,
    credentials: Option<credentials::Credentials>,
    stack_name: String,
}

fn load(global: &Global, ui: &mut Ui) -> Result<Loaded> {
    let params = Params::load(&global.env)?;
    let req = credentials::Request { os_cloud: global.os_cloud.clone(), cacert: global.os_cacert.clone(), insecure: global.insecure };
    let resolved = credentials::resolve(&req, &|k| std::env::var(k).ok(), &params.env_credentials)
        .map_err(|p| InputError(vec![p]))?;
    for w in &resolved.warnings {
        ui.warn(w);
    }
    let stack_name = global.name.clone().unwrap_or_else(|| params.hostname.clone());
    check_stack_name(&stack_name)?;
    Ok(Loaded { params, credentials: resolved.credentials, stack_name })
}

/// Heat's rule for stack names: a letter first, then letters, digits, `_-.`.
fn check_stack_name(name: &str) -> Result<(), InputError> {
    let ok = name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(InputError(vec![Problem::new(Where::file(std::path::Path::new("--name")), format!("`{name}` is not a valid stack name"))
            .hint("a stack name starts with a letter and has only letters, digits, `_`, `-` and `.`; pass --name")]))
    }
}

fn render(global: &Global, args: &RenderArgs, ui: &mut Ui) -> Result<()> {
    let loaded = load(global, ui)?;
    let floating_ip = args.floating_ip.as_deref().map(parse_floating_ip).transpose()?;
    let root = global.state_dir.clone().unwrap_or_else(|| StateDir::default_root(&|k| std::env::var(k).ok()));
    let state = StateDir::open(&root, &loaded.stack_name)?;
    let swift_credentials = swift_credentials(&loaded, ui);
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
    if let Some(why) = b.summary.server_certificate.strip_prefix("reissued: ") {
        ui.warn(&format!("the registry certificate was issued again ({why}); nodes made before this run still have the old one"));
    }
    let source = loaded.credentials.as_ref().map(|c| c.source.to_string());
    let s = &b.summary;
    ui.human(&format!(
        "Rendered stack {name} into {out}\n  \
         registry      {reg} (user {user}, password in {pw})\n  \
         cache         {cache}\n  \
         certificate   {names} ({cert}; CA {ca}, trust it with {cafile})\n  \
         nodes         1 manager + {workers} workers, {network}\n  \
         storage       {storage}\n  \
         credentials   {creds}\n\
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
    ));
    ui.json(&serde_json::json!({
        "ok": true,
        "command": "render",
        "bundle": s,
        "files": written,
        "credentials": {"source": source},
        "warnings": ui.warnings(),
    }));
    Ok(())
}

fn parse_floating_ip(s: &str) -> Result<FloatingIp, InputError> {
    let bad = || InputError(vec![Problem::new(Where::file(std::path::Path::new("--floating-ip")), format!("`{s}` is not ID=ADDRESS"))
        .hint("for example --floating-ip 6f1c...=203.0.113.10")]);
    let (id, addr) = s.split_once('=').ok_or_else(bad)?;
    let address = addr.parse().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(FloatingIp { id: id.to_string(), address })
}

/// Swift storage logs in as the operator, so the node gets their
/// credentials; say so, because that is a secret leaving the machine.
fn swift_credentials(loaded: &Loaded, ui: &mut Ui) -> Option<bundle::registry::Swift> {
    let provision::params::Storage::Swift { container } = &loaded.params.registry.storage else { return None };
    let c = loaded.credentials.as_ref()?;
    let credentials::Auth::Password { username, password, user_domain } = &c.auth else {
        ui.warn("registry_storage: swift needs password credentials; application credentials are not supported by the registry's swift driver");
        return None;
    };
    ui.warn("registry_storage: swift puts your OpenStack password in the manager's node config (as the seed did); prefer an account made for the registry");
    Some(bundle::registry::Swift {
        authurl: c.auth_url.clone(),
        username: username.clone(),
        password: password.expose().to_string(),
        tenant: c.project.as_ref().and_then(|p| p.name.clone()),
        domain: user_domain.clone(),
        region: c.region.clone(),
        container: container.clone(),
    })
}


//! The commands that need no cloud: `render`, `check`, `params`,
//! `clouds`, `completions`, `man`. Each turns the parsed command line into
//! the library's inputs, calls it, and reports through [`Ui`].

use anyhow::{Context, Result};
use clap::CommandFactory;
use serde::Serialize;

use provision::bundle;
use provision::params::{InputError, Problem, Where, credentials, defs};
use provision::state::{FloatingIp, layout};

use crate::cli::{CheckArgs, Cli, Global, ManArgs, RenderArgs};
use crate::input::{Usage, load, state_dir, state_view, swift_login};
use crate::ui::Ui;

/// `provision params`: every parameter, its type, default and meaning.
pub fn params(markdown: bool, ui: &mut Ui) -> Result<()> {
    if markdown {
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
    #[derive(Serialize)]
    struct Param {
        name: &'static str,
        required: bool,
        default: Option<&'static str>,
        expects: String,
        doc: &'static str,
    }
    #[derive(Serialize)]
    struct Params {
        parameters: Vec<Param>,
    }
    let parameters = defs::DEFS
        .iter()
        .map(|d| Param {
            name: d.name,
            required: d.required,
            default: d.default,
            expects: d.kind.describe(),
            doc: d.doc,
        })
        .collect();
    ui.result("params", true, &Params { parameters });
    Ok(())
}

/// `provision completions SHELL`, with the cloud names of clouds.yaml.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "provision", &mut script);
    let script = String::from_utf8(script).context("the completion script is text")?;
    print!("{}", crate::cli::with_cloud_names(shell, &script));
    Ok(())
}

pub fn clouds(names: bool, ui: &mut Ui) -> Result<()> {
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
    #[derive(Serialize)]
    struct Clouds<'a> {
        clouds: &'a [credentials::CloudEntry],
    }
    ui.result("clouds", true, &Clouds { clouds: &list });
    Ok(())
}

pub fn render(global: &Global, args: &RenderArgs, ui: &mut Ui) -> Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(Usage(format!(
            "--out {}: is a file; give a folder (made if missing) for the bundle",
            args.out.display()
        ))
        .into());
    }
    let loaded = load(global, ui)?;
    ui.warn_open(&loaded.params);
    let floating_ip = args.floating_ip.as_deref().map(parse_floating_ip).transpose()?;
    let state = state_dir(global, &loaded.stack_name)?;
    let swift_credentials = swift_login(&loaded, ui)?;
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
    #[derive(Serialize)]
    struct Render<'a> {
        bundle: &'a bundle::Summary,
        files: Vec<&'a std::path::PathBuf>,
        credentials: Source,
    }
    #[derive(Serialize)]
    struct Source {
        source: Option<String>,
    }
    let files = written.iter().chain(std::iter::once(&summary_file)).collect();
    ui.result("render", true, &Render { bundle: s, files, credentials: Source { source } });
    Ok(())
}

pub fn check(global: &Global, args: &CheckArgs, ui: &mut Ui) -> Result<()> {
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
        None => state.read(layout::CA_CRT)?.ok_or_else(|| missing("CA"))?,
    };
    let password = state.read_private(layout::REGISTRY_PASSWORD)?.ok_or_else(|| missing("registry password"))?;
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
    let ca_file = own.map_or_else(|| state.file(layout::CA_CRT), |o| o.ca_file.clone()).display().to_string();
    let pw_file = state.file(layout::REGISTRY_PASSWORD).display().to_string();
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
    #[derive(Serialize)]
    struct Check<'a> {
        #[serde(flatten)]
        report: &'a check::Report,
        client: &'a check::ClientHints,
        ca_file: &'a str,
    }
    ui.result("check", report.ok(), &Check { report: &report, client: &hints, ca_file: &ca_file });
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

/// `provision man`: one page on stdout, or every page into a folder. Each
/// page ends with what clap does not write: ENVIRONMENT and EXIT STATUS.
pub fn man(args: &ManArgs, ui: &mut Ui) -> Result<()> {
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
    #[derive(Serialize)]
    struct Man {
        written: Vec<std::path::PathBuf>,
    }
    ui.result("man", true, &Man { written });
    Ok(())
}

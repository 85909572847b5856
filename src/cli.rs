//! The command line, as data: one clap definition that `--help`, the shell
//! completions and the man page are all generated from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  provision --env env_params.yml                      create or converge the stack, wait, show outputs
  provision --env env_params.yml --preview            what a run would change; changes nothing
  OS_CLOUD=mycloud provision -e env_params.yml -e more.yml --output json
  provision status --env env_params.yml
  provision destroy --env env_params.yml
  provision render --env env_params.yml --out bundle/
  provision render -e env_params.yml -e env/local-cloud.yml --out bundle/ --output json
  provision params
  OS_CLOUD=mycloud provision render -e env_params.yml --out bundle/

Exit codes: 0 done, 1 failed (the stack failed, the cloud refused, the state directory was refused,
or another run holds the stack with --no-wait), 2 bad input or usage
(nothing was made), 3 timed out (the stack is still in progress in Heat), 130 interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "provision",
    version,
    about = "Heat environment file in, Docker Swarm with a private registry on OpenStack out",
    long_about = "Reads Heat environment files (parameters, parameter_defaults, resource_registry) into \
                  typed parameters, renders a Heat template and Flatcar node configs, and makes the \
                  registry's CA and certificate. Credentials come from --os-cloud (clouds.yaml), the \
                  OS_* variables, or the environment file's os_* parameters, in that order.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Without a command: create the stack, or converge it on a re-run.
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    // These belong to deploying only; `DeployArgs::given` lets the command
    // refuse them in front of another command rather than ignore them.
    /// Print Heat's preview of what this run would add, update, replace or
    /// delete, and change nothing.
    #[arg(long, visible_alias = "dry-run")]
    pub preview: bool,

    /// Minutes Heat (and this command) wait for the stack [default: 60].
    // An Option, not a default value: `status --timeout 60` must be refused
    // like any other deploy flag given in front of another command.
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub timeout: Option<u64>,

    /// Let Heat delete what it made when a create fails (default: keep it
    /// to look at, and say how to retry or remove it).
    #[arg(long)]
    pub rollback: bool,

    /// Tag for the stack; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// How long the stack is wanted (90s, 30m, 2h, 7d): written as its
    /// provision-expires tag, after which `provision gc` deletes it.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,

    /// Create even when the project's quotas look too small (for clouds
    /// that report their use wrongly).
    #[arg(long)]
    pub skip_quota_check: bool,

    /// The CI job this stack serves, as its provision-ci tag [default:
    /// CI_JOB_URL, or GitHub's run URL from GITHUB_* variables].
    #[arg(long, value_name = "URL")]
    pub ci_url: Option<String>,
}

impl DeployArgs {
    /// Minutes Heat and the wait allow the stack.
    pub fn timeout_minutes(&self) -> u64 {
        self.timeout.unwrap_or(60)
    }

    /// The first deploy-only flag given, if any.
    pub fn given(&self) -> Option<&'static str> {
        if self.preview {
            Some("--preview")
        } else if self.rollback {
            Some("--rollback")
        } else if !self.tags.is_empty() {
            Some("--tag")
        } else if self.timeout.is_some() {
            Some("--timeout")
        } else if self.ttl.is_some() {
            Some("--ttl")
        } else if self.ci_url.is_some() {
            Some("--ci-url")
        } else if self.skip_quota_check {
            Some("--skip-quota-check")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Heat environment file; repeat to merge several, later ones win.
    #[arg(short = 'e', long = "env", value_name = "FILE", global = true)]
    pub env: Vec<PathBuf>,

    /// Stack name [default: the hostname parameter].
    #[arg(long, value_name = "NAME", global = true)]
    pub name: Option<String>,

    /// Appended to the hostname (and so to the stack name) as
    /// `hostname-SUFFIX`, so parallel jobs never collide.
    #[arg(long, value_name = "SUFFIX", env = "PROVISION_NAME_SUFFIX", global = true)]
    pub name_suffix: Option<String>,

    /// Whether the suffix came from PROVISION_NAME_SUFFIX, so a problem
    /// with it points there (set after parsing).
    #[arg(skip)]
    pub name_suffix_from_env: bool,

    /// Where the CA, certificates and generated passwords are kept, one
    /// folder per stack [default: $XDG_STATE_HOME/provision or ~/.local/state/provision].
    #[arg(long, value_name = "DIR", env = "PROVISION_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// When another provision run holds the stack (its state directory),
    /// fail at once (exit 1) instead of waiting for it.
    #[arg(long, global = true)]
    pub no_wait: bool,

    /// Use templates from DIR instead of the built-in ones, file by file
    /// (same layout as templates/ in the source).
    #[arg(long, value_name = "DIR", global = true)]
    pub templates: Option<PathBuf>,

    /// Cloud from clouds.yaml (and secure.yaml) to use.
    #[arg(long, value_name = "NAME", env = "OS_CLOUD", global = true, value_hint = clap::ValueHint::Other)]
    pub os_cloud: Option<String>,

    /// CA bundle to verify the cloud's TLS certificates with.
    #[arg(long, value_name = "FILE", global = true)]
    pub os_cacert: Option<PathBuf>,

    /// Do not verify the cloud's TLS certificates (says so on every run).
    #[arg(long, global = true)]
    pub insecure: bool,

    /// How results are printed: for people, or one JSON document on stdout.
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    pub output: Output,

    /// When to colour the output.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the stack, or converge it on a re-run, wait for it, and hand
    /// it to Docker Swarm (the same as `provision --env FILE`).
    #[command(after_help = "\
Examples:
  provision deploy --env env_params.yml
  provision deploy --env env_params.yml --dry-run
  provision deploy -e env_params.yml --name ci-1234 --tag ci --output json")]
    Deploy(DeployArgs),

    /// Write the bundle: template, environment, node configs and certificates.
    #[command(after_help = "\
Examples:
  provision render --env env_params.yml --out bundle/
  openstack stack create -t bundle/template.yaml -e bundle/environment.yaml myhost

The CA key and the registry password stay in the state directory; the bundle
holds only what Heat and the nodes need (manager.cloud-config is 0600: it
carries the registry's key and passwords for the node).")]
    Render(RenderArgs),

    /// Check the deployed registry and cache from this machine, and print
    /// what a Docker client needs to use them.
    #[command(after_help = "\
Examples:
  provision check --env env_params.yml --address 203.0.113.10
  provision check --env env_params.yml --output json

Steps: TLS against the stack's CA for hostname.domain, the registry's 401
challenge, the stored credentials, the catalog, the cache answering
anonymously. Each failure is one line saying what to look at; exit code 1.")]
    Check(CheckArgs),

    /// Show the stack's status, and the failed resources with Heat's reasons.
    #[command(after_help = "\
Examples:
  provision status --env env_params.yml
  provision status --name mystack --output json

Exit code 0 when the stack is complete, 1 when it failed, does not exist, or
is still in progress. With --watch, a stack in progress is followed (its
events as they come) until it settles, and the exit code is its end's.")]
    Status(StatusArgs),

    /// Print the stack's outputs, or one of them.
    #[command(after_help = "\
Examples:
  provision outputs --env env_params.yml
  provision outputs --env env_params.yml manager_floating_ip      # the raw value, for scripts
  provision outputs --env env_params.yml --output json | jq -r .outputs.manager_floating_ip

A stack still in progress has no final outputs: exit 1, nothing on stdout.")]
    Outputs(OutputsArgs),

    /// Delete the stack, wait until it is gone, and release the manager's
    /// floating IP.
    #[command(after_help = "\
Examples:
  provision destroy --env env_params.yml
  provision destroy --name mystack --keep-floating-ip

Only a stack that provision made (it carries the tag `provision`) is deleted,
unless --force is given. On a terminal it asks first, unless --yes is given;
off a terminal (pipelines) it does not ask. A name that no stack has exits 2,
naming the closest stack there is, unless this machine's state directory
knows the stack (then it is already gone: exit 0). The CA and passwords in
the state directory are kept, so a stack made again with the same name
trusts the same CA.")]
    Destroy(DestroyArgs),

    /// The stacks provision made in this project: status, owner, age,
    /// expiry and floating IP.
    #[command(after_help = "\
Examples:
  provision list --os-cloud mycloud
  provision list --expired --output json
  provision list --owner gitlab:ana --failed")]
    List(ListArgs),

    /// Delete what CI left behind: provision's stacks that are failed or
    /// expired, and floating IPs whose stack is gone. A dry run unless --yes.
    #[command(after_help = "\
Examples:
  provision gc --os-cloud mycloud            # what it would delete, and why
  provision gc --os-cloud mycloud --yes      # do it (a scheduled job)

Only stacks with the tag `provision` are considered: failed ones (*_FAILED)
and expired ones (provision-expires in the past, set by --ttl). A stack in
progress that has not expired is never touched. A floating IP provision
allocated whose stack is gone is deleted once it is unattached and the
previous pass saw it so too (it marks it), or once it is older than
--grace. Everything else is left to Heat.")]
    Gc(GcArgs),

    /// Open a shell on a node, or run a command there, over SSH on the
    /// pinned path: the manager on its public address, a worker through
    /// the manager.
    #[command(after_help = "\
Examples:
  provision ssh --env env_params.yml                        # a shell on the manager
  provision ssh --env env_params.yml imixs-worker-1 -- docker info --format '{{.Name}}'
  provision ssh --name mystack -- docker node ls            # credentials from clouds.yaml / OS_*
  echo 'docker ps; uptime' | provision ssh --name mystack   # no terminal: the shell reads stdin
  provision ssh --nodes inventory.json --host-keys keys/ --identity id_ed25519 worker-2 -- uptime

The nodes come from the stack's outputs (Heat), or from --nodes FILE. A node is
accepted only if it shows the host key pinned for it (the keys the bundle put
in the node configs, in the stack's state directory; or --host-keys DIR); there
is no first-use trust. The words after `--` are joined with spaces and run by
the node's shell, as ssh does. Without them: on a terminal, an interactive
shell with a pty; otherwise the shell reads standard input. The exit status is
the command's (or the shell's).")]
    Ssh(SshArgs),

    /// Print a node's console log from Nova, and what it signalled to Heat:
    /// for a node that failed, whatever the stack's state.
    #[command(after_help = "\
Examples:
  provision logs --env env_params.yml                 # the manager
  provision logs --name mystack imixs-worker-1 --lines 200
  provision logs --name mystack --output json | jq -r '.nodes[].console'

NODE is a server name as Nova has it (the stack's servers are listed when it
matches none).")]
    Logs(LogsArgs),

    /// Form the Docker Swarm on the nodes over SSH, or find it formed:
    /// init on the manager, workers joined, overlay networks, node labels,
    /// nodes that are gone removed.
    #[command(after_help = "\
Examples:
  provision handoff --env env_params.yml        # the stack's nodes, from its outputs
  provision handoff --state-dir /tmp/s --name harness --nodes /tmp/provision-nodes/inventory.json --output json

`provision --env` does this itself once the stack is complete; this command
runs it again alone (after a hand-off that failed, say). Idempotent: a re-run
that finds the swarm formed changes nothing and says so; after a scale-up only
the new workers join; a node that is Down and no longer in the node list is
removed.")]
    Handoff(HandoffArgs),

    /// List the parameters an environment file may set.
    #[command(after_help = "\
Examples:
  provision params
  provision params --markdown > params.md")]
    Params {
        /// Print the table as Markdown (as in the README).
        #[arg(long)]
        markdown: bool,
    },

    /// List the clouds of clouds.yaml (the names --os-cloud takes).
    #[command(after_help = "\
Examples:
  provision clouds
  provision clouds --names     # one per line, for scripts and completion")]
    Clouds {
        /// Only the names, one per line.
        #[arg(long)]
        names: bool,
    },

    /// Print a shell completion script (--os-cloud completes the clouds of
    /// clouds.yaml in bash, zsh and fish).
    #[command(after_help = "\
Examples:
  provision completions bash > /etc/bash_completion.d/provision
  provision completions zsh > ~/.zfunc/_provision")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print a man page (roff), or write them all into a folder.
    #[command(after_help = "\
Examples:
  provision man > provision.1 && man ./provision.1
  provision man destroy | man -l -
  provision man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only stacks with this tag; repeat for all of several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only stacks of this owner (their provision-owner tag).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only stacks past their expiry.
    #[arg(long)]
    pub expired: bool,
    /// Only failed stacks.
    #[arg(long)]
    pub failed: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete and mark; without it nothing is changed.
    #[arg(long)]
    pub yes: bool,
    /// Age after which an orphaned floating IP goes on the first pass.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub grace: String,
    /// Minutes to wait for each stack's deletion.
    #[arg(long, value_name = "MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The server [default: the manager, else every server of the stack].
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    /// Lines of each console log, from its end.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub lines: u32,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Follow a stack in progress until it settles, showing its events.
    #[arg(long, short = 'w')]
    pub watch: bool,

    /// Minutes to follow for, at most (with --watch).
    #[arg(long, value_name = "MINUTES", default_value_t = 60, requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub watch_timeout: u64,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// One output, printed raw (a string as is, anything else as JSON).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print [default: provision itself].
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,

    /// Write provision.1 and a provision-COMMAND.1 for every command into DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Keep the manager's floating IP for the next stack of this name.
    #[arg(long)]
    pub keep_floating_ip: bool,

    /// Do not ask, even on a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Delete the stack even if provision did not make it (no `provision` tag).
    #[arg(long)]
    pub force: bool,

    /// Minutes to wait for the delete.
    #[arg(long, value_name = "MINUTES", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Address to connect to [default: hostname.domain resolved by DNS];
    /// the certificate is still checked for hostname.domain.
    #[arg(long, value_name = "IP")]
    pub address: Option<std::net::IpAddr>,

    /// Port of the private registry.
    #[arg(long, value_name = "PORT", default_value_t = 5000)]
    pub registry_port: u16,

    /// Port of the pull-through cache.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub cache_port: u16,

    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Folder to write the bundle into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The manager's floating IP, when already allocated, as ID=ADDRESS;
    /// the registry certificate then names the address.
    #[arg(long, value_name = "ID=ADDRESS")]
    pub floating_ip: Option<String>,
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// The nodes, from an inventory file (the `inventory.json` of
    /// dev/nodes) [default: the stack's outputs, read from Heat].
    #[arg(long, value_name = "FILE")]
    pub nodes: Option<PathBuf>,

    /// Folder of the pinned host keys, NODE/ssh_host_ed25519_key.pub
    /// [default: the keys the bundle made for the stack's node configs, in
    /// its state directory].
    #[arg(long, value_name = "DIR")]
    pub host_keys: Option<PathBuf>,

    /// Private key to log in with [default: ssh/client_ed25519 in the
    /// stack's state directory, else the inventory's client key].
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Connection attempts per node before giving up, 5 s apart.
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub ssh_attempts: u32,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub nodes: NodesArgs,

    /// The node [default: the manager].
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    /// The command to run, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    #[command(flatten)]
    pub nodes: NodesArgs,

    /// Where to write the Imixs-Cloud configuration directory locally
    /// [default: imixs-cloud in the stack's state directory, if a stack is
    /// named; otherwise it is written on the manager only].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Variables provision reads, for the man pages' ENVIRONMENT section.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("OS_CLOUD", "The cloud in clouds.yaml to use (as --os-cloud)."),
    (
        "OS_CLIENT_CONFIG_FILE",
        "A clouds.yaml to read instead of ./clouds.yaml, ~/.config/openstack/clouds.yaml and /etc/openstack/clouds.yaml.",
    ),
    ("OS_CLIENT_SECURE_FILE", "A secure.yaml (the secrets of clouds.yaml) to read instead of the one beside it."),
    (
        "OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_PROJECT_ID, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE, OS_CACERT, OS_APPLICATION_CREDENTIAL_ID, OS_APPLICATION_CREDENTIAL_SECRET",
        "The credentials of an openrc file, when no cloud is named.",
    ),
    ("PROVISION_STATE_DIR", "Where the CA, certificates, passwords and keys are kept (as --state-dir)."),
    ("XDG_STATE_HOME", "The state directory's default parent (~/.local/state when unset)."),
    ("RUST_LOG", "Turns on tracing to stderr (e.g. provision=debug); secrets are never traced."),
    ("NO_COLOR", "Set: no colour on a terminal."),
];

/// Exit codes, for the man pages' EXIT STATUS section (main.rs chooses them).
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Done."),
    (
        "1",
        "Failed: the stack failed, the cloud refused, the state directory was refused, or another run holds the stack (--no-wait).",
    ),
    ("2", "Bad input or usage; nothing was made."),
    ("3", "Timed out; the stack is still in progress in Heat."),
    ("130", "Interrupted."),
];

/// The sections every man page ends with, in roff.
pub fn man_tail() -> String {
    fn esc(s: &str) -> String {
        s.replace('\\', "\\\\").replace('-', "\\-")
    }
    let mut out = String::from(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(name), esc(what)));
    }
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        out.push_str(&format!(".TP\n{code}\n{}\n", esc(what)));
    }
    out
}

/// clap writes `--os-cloud` as a plain value; the cloud names are in
/// clouds.yaml, which only a run can read, so each shell's script is given
/// a call to `provision clouds --names` for that one option.
pub fn with_cloud_names(shell: clap_complete::Shell, script: &str) -> String {
    const NAMES: &str = "provision clouds --names 2>/dev/null";
    match shell {
        clap_complete::Shell::Bash => script.replace(
            "--os-cloud)\n                    COMPREPLY=(\"${cur}\")\n                    if [[ \"${BASH_VERSINFO[0]}\" -ge 4 ]]; then\n                        compopt -o nospace\n                    fi\n",
            &format!("--os-cloud)\n                    COMPREPLY=($(compgen -W \"$({NAMES})\" -- \"${{cur}}\"))\n"),
        ),
        clap_complete::Shell::Zsh => {
            let mut out = String::with_capacity(script.len());
            for line in script.split_inclusive('\n') {
                match line.find("'--os-cloud=[").and_then(|start| line[start..].find("]:NAME:").map(|e| start + e)) {
                    Some(at) => {
                        let end = line.rfind('\'').filter(|&q| q > at).unwrap_or(line.len());
                        out.push_str(&line[..at]);
                        out.push_str(&format!("]:NAME:{{compadd -- ${{(f)\"$({NAMES})\"}}}}"));
                        out.push_str(&line[end..]);
                    }
                    None => out.push_str(line),
                }
            }
            out
        }
        clap_complete::Shell::Fish => script
            .lines()
            .map(|l| if l.contains(" -l os-cloud ") { format!("{l} -a '({NAMES})'\n") } else { format!("{l}\n") })
            .collect(),
        _ => script.to_string(),
    }
}

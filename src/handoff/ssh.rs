//! SSH to the nodes with `russh`: the manager on its public address, each
//! worker through the manager (a `direct-tcpip` channel on the manager's
//! connection, as `ssh -J` does, so the manager's sshd sees one connection
//! however many workers there are). A node is accepted only if it shows its
//! pinned host key; waiting for a node is bounded and said, one line per
//! attempt.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};

use super::{HandoffError, Manager, Nodes, Worker};
use crate::keys::{Pins, fingerprint, same_key};
use crate::poll::{Pause, Stop, Try, retry};

/// How long to wait, and how often to try.
#[derive(Debug, Clone)]
pub struct Settings {
    pub attempts: u32,
    pub interval: Duration,
    /// One TCP connect and SSH handshake.
    pub connect_timeout: Duration,
    /// One remote command, from start to exit.
    pub command_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        // 60 attempts 5 s apart: a node that has just been created may take
        // a few minutes to boot, more is a problem worth reporting.
        Settings {
            attempts: 60,
            interval: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            command_timeout: Duration::from_secs(180),
        }
    }
}

/// A command for a node. `shown` is what errors and notices may print:
/// the text may carry a secret (a swarm join token).
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    pub text: String,
    pub shown: String,
    pub stdin: Option<Vec<u8>>,
}

/// Only what may be shown, so a `{:?}` in a trace cannot leak the text.
impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd").field("shown", &self.shown).field("stdin", &self.stdin.as_ref().map(Vec::len)).finish()
    }
}

impl Cmd {
    pub fn new(text: impl Into<String>) -> Cmd {
        let text = text.into();
        Cmd { shown: text.clone(), text, stdin: None }
    }

    /// A command whose text must not be printed anywhere.
    pub fn secret(text: impl Into<String>, shown: impl Into<String>) -> Cmd {
        Cmd { text: text.into(), shown: shown.into(), stdin: None }
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }
}

/// What a command left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// None when it ended without an exit status (killed by a signal).
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }

    /// The error for a command that had to succeed.
    pub fn check(self, node: &str, cmd: &Cmd) -> Result<Output, HandoffError> {
        if self.ok() {
            return Ok(self);
        }
        let status = match self.status {
            Some(s) => format!("exited with status {s}"),
            None => "ended without an exit status".to_string(),
        };
        Err(HandoffError::Command {
            node: node.to_string(),
            command: cmd.shown.clone(),
            status,
            stderr: last_lines(&self.stderr, 5),
        })
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Where output of a streamed command goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Why one handshake did not give a connection.
#[derive(Debug, thiserror::Error)]
enum Fail {
    #[error("host key {offered}")]
    HostKey { offered: String },
    #[error(transparent)]
    Ssh(#[from] russh::Error),
}

/// The client side of one connection: accepts exactly the pinned key.
struct Pinned {
    expected: PublicKey,
}

impl client::Handler for Pinned {
    type Error = Fail;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Fail> {
        match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } if same_key(key, &self.expected) => Ok(true),
            PublicKeyOrCertificate::PublicKey { key, .. } => Err(Fail::HostKey { offered: fingerprint(key) }),
            PublicKeyOrCertificate::Certificate(c) => Err(Fail::HostKey {
                offered: format!("a certificate for {}", fingerprint(&PublicKey::from(c.public_key().clone()))),
            }),
        }
    }
}

/// One logged-in connection to one node.
pub struct Link {
    node: String,
    handle: Handle<Pinned>,
    command_timeout: Duration,
}

impl Link {
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A new session channel. sshd refuses one beyond its MaxSessions (10
    /// by default) per connection, and frees a finished one a moment after
    /// its exit status: a refusal is tried again, briefly.
    async fn session(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        let refused = retry(
            7,
            Pause::Doubling(Duration::from_millis(50)),
            |_, _| {},
            |_| async {
                match self.handle.channel_open_session().await {
                    Err(russh::Error::ChannelOpenFailure(why)) => {
                        tracing::debug!(node = %self.node, ?why, "session refused; trying again");
                        Try::Again(format!("{why:?}"))
                    }
                    Ok(ch) => Try::Done(ch),
                    Err(e) => Try::Fail(e),
                }
            },
        );
        match refused.await {
            Ok(ch) => Ok(ch),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::GaveUp { .. }) => self.handle.channel_open_session().await,
        }
    }

    /// Runs a command and collects its output.
    pub async fn run(&self, cmd: &Cmd) -> Result<Output, HandoffError> {
        let mut out = Output::default();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        out.status = self
            .stream(cmd, |s, data| match s {
                Stream::Stdout => stdout.extend_from_slice(data),
                Stream::Stderr => stderr.extend_from_slice(data),
            })
            .await?;
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        tracing::debug!(node = %self.node, command = %cmd.shown, status = ?out.status, "ran");
        Ok(out)
    }

    /// Runs a command, handing its output over as it comes; gives the exit
    /// status.
    pub async fn stream(&self, cmd: &Cmd, mut sink: impl FnMut(Stream, &[u8])) -> Result<Option<u32>, HandoffError> {
        let ssh_err = |e: russh::Error| HandoffError::Ssh {
            node: self.node.clone(),
            message: format!("running `{}`: {e}", cmd.shown),
        };
        let work = async {
            let mut ch = self.session().await.map_err(ssh_err)?;
            ch.exec(true, cmd.text.as_bytes()).await.map_err(ssh_err)?;
            if let Some(input) = &cmd.stdin {
                ch.data(&input[..]).await.map_err(ssh_err)?;
            }
            // Without EOF a command that reads stdin would wait forever.
            ch.eof().await.map_err(ssh_err)?;
            let mut status = None;
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => sink(Stream::Stdout, &data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => sink(Stream::Stderr, &data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok(status)
        };
        tokio::time::timeout(self.command_timeout, work).await.map_err(|_| HandoffError::Ssh {
            node: self.node.clone(),
            message: format!("`{}` did not finish in {:?}", cmd.shown, self.command_timeout),
        })?
    }

    /// A login shell, open until it exits. With a [`Terminal`] the node
    /// gives it a pty of that size (an interactive session); without one
    /// the shell reads `input` as a script, as `ssh node < script` does.
    /// No command timeout: the operator decides when it ends.
    pub async fn shell(
        &self,
        terminal: Option<&Terminal>,
        mut input: tokio::sync::mpsc::Receiver<Input>,
        mut sink: impl FnMut(Stream, &[u8]),
    ) -> Result<Option<u32>, HandoffError> {
        let ssh_err = |e: russh::Error| HandoffError::Ssh { node: self.node.clone(), message: format!("shell: {e}") };
        let mut ch = self.session().await.map_err(ssh_err)?;
        if let Some(t) = terminal {
            ch.request_pty(true, &t.term, t.cols, t.rows, 0, 0, &[]).await.map_err(ssh_err)?;
        }
        ch.request_shell(true).await.map_err(ssh_err)?;
        let mut status = None;
        let mut input_open = true;
        loop {
            tokio::select! {
                msg = ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => sink(Stream::Stdout, &data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => sink(Stream::Stderr, &data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                got = input.recv(), if input_open => match got {
                    Some(Input::Data(d)) => ch.data(&d[..]).await.map_err(ssh_err)?,
                    Some(Input::Resize { cols, rows }) => ch.window_change(cols, rows, 0, 0).await.map_err(ssh_err)?,
                    Some(Input::Eof) | None => {
                        input_open = false;
                        ch.eof().await.map_err(ssh_err)?;
                    }
                },
            }
        }
        Ok(status)
    }

    pub async fn close(self) {
        let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
    }
}

/// The operator's terminal, for an interactive shell's pty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// `TERM`, so the node's programs draw for the right terminal.
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

/// What flows from the operator into a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    Resize { cols: u32, rows: u32 },
    Eof,
}

/// What one attempt to connect gave: a link, another try worth making
/// (not up yet, refused, reset: why), or a failure no retry mends.
type Attempt = Try<Link, HandoffError>;

/// Makes [`Link`]s: the login user and key, the pinned host keys, the waits.
pub struct Connector {
    user: String,
    port: u16,
    key: Arc<PrivateKey>,
    key_name: String,
    pins: Pins,
    settings: Settings,
    config: Arc<client::Config>,
}

impl Connector {
    /// `key_name` is how the client key is named in errors (its path).
    pub fn new(nodes: &Nodes, key: PrivateKey, key_name: &str, pins: Pins, settings: Settings) -> Connector {
        let config = client::Config {
            // The swarm steps are short; a dead manager should not hang a run.
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            nodelay: true,
            ..Default::default()
        };
        Connector {
            user: nodes.ssh_user.clone(),
            port: nodes.ssh_port,
            key: Arc::new(key),
            key_name: key_name.to_string(),
            pins,
            settings,
            config: Arc::new(config),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn pin(&self, node: &str) -> Result<PublicKey, HandoffError> {
        self.pins
            .get(node)
            .cloned()
            .ok_or_else(|| HandoffError::Keys(crate::keys::KeyError::Bad(format!("no pinned host key for {node}"))))
    }

    /// The manager, on its public address.
    pub async fn manager(&self, m: &Manager, notice: &dyn Fn(&str)) -> Result<Link, HandoffError> {
        let expected = self.pin(&m.name)?;
        let shown = m.public_address.to_string();
        let hint = format!(
            "the security group lets this machine reach port {} of {}, and that the address is the manager's",
            self.port, m.public_address
        );
        self.wait(&m.name, &shown, &hint, notice, || async {
            let tcp = match tokio::time::timeout(
                self.settings.connect_timeout,
                tokio::net::TcpStream::connect((m.public_address, self.port)),
            )
            .await
            {
                Err(_) => return Attempt::Again(format!("no answer in {:?}", self.settings.connect_timeout)),
                Ok(Err(e)) => return Attempt::Again(e.to_string()),
                Ok(Ok(s)) => s,
            };
            let _ = tcp.set_nodelay(true);
            self.handshake(&m.name, &shown, m.public_address, tcp, expected.clone()).await
        })
        .await
    }

    /// A worker, through the manager's connection.
    pub async fn worker(&self, via: &Link, w: &Worker, notice: &dyn Fn(&str)) -> Result<Link, HandoffError> {
        let expected = self.pin(&w.name)?;
        let shown = format!("{} through {}", w.private_address, via.node);
        let hint = format!(
            "{} is on the manager's private network and its security group allows port {} from the manager",
            w.name, self.port
        );
        self.wait(&w.name, &shown, &hint, notice, || async {
            let open =
                via.handle.channel_open_direct_tcpip(w.private_address.to_string(), self.port.into(), "127.0.0.1", 0);
            let channel = match tokio::time::timeout(self.settings.connect_timeout, open).await {
                Err(_) => return Attempt::Again(format!("no answer in {:?}", self.settings.connect_timeout)),
                Ok(Err(russh::Error::ChannelOpenFailure(why))) => {
                    return Attempt::Again(format!("{} could not connect ({why:?})", via.node));
                }
                // The manager's connection itself is gone: waiting will not help.
                Ok(Err(e)) => {
                    return Attempt::Fail(HandoffError::Ssh {
                        node: w.name.clone(),
                        message: format!("through {}: {e}", via.node),
                    });
                }
                Ok(Ok(c)) => c,
            };
            self.handshake(&w.name, &shown, w.private_address, channel.into_stream(), expected.clone()).await
        })
        .await
    }

    async fn handshake<S>(&self, node: &str, shown: &str, address: IpAddr, stream: S, expected: PublicKey) -> Attempt
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let expected_fp = fingerprint(&expected);
        let connect = client::connect_stream(self.config.clone(), stream, Pinned { expected });
        let mut handle = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Err(_) => return Attempt::Again(format!("no SSH handshake in {:?}", self.settings.connect_timeout)),
            Ok(Err(Fail::HostKey { offered })) => {
                return Attempt::Fail(HandoffError::HostKey {
                    node: node.to_string(),
                    address: address.to_string(),
                    expected: expected_fp,
                    offered,
                });
            }
            // sshd starting, or dropping connections beyond MaxStartups.
            Ok(Err(Fail::Ssh(e))) => return Attempt::Again(e.to_string()),
            Ok(Ok(h)) => h,
        };
        let auth = handle.authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(self.key.clone(), None));
        match tokio::time::timeout(self.settings.connect_timeout, auth).await {
            Err(_) => Attempt::Again("no answer to authentication".into()),
            Ok(Err(e)) => Attempt::Again(e.to_string()),
            Ok(Ok(r)) if r.success() => {
                Attempt::Done(Link { node: node.to_string(), handle, command_timeout: self.settings.command_timeout })
            }
            Ok(Ok(_)) => {
                tracing::debug!(node, address = shown, "authentication refused");
                Attempt::Fail(HandoffError::Auth {
                    node: node.to_string(),
                    address: address.to_string(),
                    user: self.user.clone(),
                    key: format!("{}.pub", self.key_name),
                })
            }
        }
    }

    async fn wait<F, Fut>(
        &self,
        node: &str,
        shown: &str,
        hint: &str,
        notice: &dyn Fn(&str),
        mut attempt: F,
    ) -> Result<Link, HandoffError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt>,
    {
        let started = Instant::now();
        let total = self.settings.attempts.max(1);
        let say = |n: u32, last: &str| {
            notice(&format!("waiting for SSH on {shown} ({node}), attempt {n}/{total}: last {last}"))
        };
        match retry(total, Pause::Every(self.settings.interval), say, |_| attempt()).await {
            Ok(link) => Ok(link),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::GaveUp { tries, last }) => Err(HandoffError::SshTimeout {
                node: node.to_string(),
                address: shown.to_string(),
                attempts: tries,
                waited: started.elapsed(),
                last,
                hint: hint.to_string(),
            }),
        }
    }
}

/// Connections to the manager and to the workers named, kept for a run.
pub struct Fleet {
    pub manager: Link,
    workers: std::collections::BTreeMap<String, Link>,
}

/// Most workers handled at once. Each worker's handshake runs in a channel
/// of the one connection to the manager, so the manager's sshd never sees
/// more than that connection (its MaxStartups, 10 by default, does not
/// apply as it does to `ssh -J`); each worker's sshd sees one. The bound
/// keeps a large stack from opening hundreds of channels and joins at once.
pub const CONCURRENCY: usize = 24;

impl Fleet {
    /// Connects to the manager, then to `workers` through it, at most
    /// [`CONCURRENCY`] at a time.
    pub async fn connect(
        connector: &Connector,
        nodes: &Nodes,
        workers: &[&str],
        notice: &dyn Fn(&str),
    ) -> Result<Fleet, HandoffError> {
        use futures::StreamExt;
        let manager = connector.manager(&nodes.manager, notice).await?;
        let list: Vec<&Worker> = workers
            .iter()
            .map(|n| nodes.worker(n).ok_or_else(|| HandoffError::Nodes(format!("no worker named {n}"))))
            .collect::<Result<_, _>>()?;
        let links: Vec<Result<Link, HandoffError>> = futures::stream::iter(list)
            .map(|w| connector.worker(&manager, w, notice))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut map = std::collections::BTreeMap::new();
        for l in links {
            let l = l?;
            map.insert(l.node.clone(), l);
        }
        Ok(Fleet { manager, workers: map })
    }

    pub fn link(&self, node: &str) -> Option<&Link> {
        if self.manager.node == node { Some(&self.manager) } else { self.workers.get(node) }
    }

    pub async fn close(self) {
        for (_, w) in self.workers {
            w.close().await;
        }
        self.manager.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_names_only_what_may_be_shown() {
        let cmd = Cmd::secret("docker swarm join --token SWMTKN-1-secret 10.0.0.1:2377", "docker swarm join ...");
        let out = Output { status: Some(1), stdout: String::new(), stderr: "a\nb\nError: no\n".into() };
        let e = out.check("worker-1", &cmd).unwrap_err().to_string();
        assert_eq!(e, "worker-1: `docker swarm join ...` exited with status 1: a | b | Error: no");
        assert!(!e.contains("SWMTKN"));
        assert!(!format!("{cmd:?}").contains("SWMTKN"));
        let ok = Output { status: Some(0), ..Default::default() };
        assert!(ok.check("m", &cmd).is_ok());
        let killed = Output { status: None, ..Default::default() };
        assert!(killed.check("m", &cmd).unwrap_err().to_string().contains("without an exit status"));
    }

    #[test]
    fn errors_say_what_to_check() {
        let e = HandoffError::SshTimeout {
            node: "manager".into(),
            address: "203.0.113.5".into(),
            attempts: 60,
            waited: Duration::from_secs(300),
            last: "Connection refused (os error 111)".into(),
            hint: "the security group lets this machine reach port 22".into(),
        };
        let s = e.to_string();
        assert!(s.contains("no SSH on 203.0.113.5 (manager) after 60 attempts"), "{s}");
        assert!(s.contains("security group"), "{s}");
    }
}

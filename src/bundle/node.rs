//! A node's configuration as data, and the two formats its agent reads.
//!
//! [`NodeConfig`] is what a node needs at its first boot: its host name, the
//! keys its login user accepts, the files it writes and the systemd units
//! it runs. It is built from typed values and the text templates (units,
//! scripts), then written as Flatcar's `#cloud-config` (coreos-cloudinit
//! applies it at every boot, in order) or as Ignition JSON, spec 3.3.0
//! (applied once, before systemd starts anything). Being serialised, not
//! pasted into a text template, no value can change the document's shape.
//! Text that Heat fills in (`@@NAME@@`, by `str_replace`) passes through
//! both formats unchanged.

use std::io::Write;

use base64::Engine;
use serde::Serialize;
use serde_saphyr::LitStr;

use crate::params::NodeConfigFormat;

/// Flatcar's login user, whose keys the node configs set.
pub const LOGIN_USER: &str = "core";
/// Nova refuses user_data longer than this, counted after base64.
pub const USER_DATA_LIMIT: usize = 65_535;
/// What Heat's substitutions may add to a rendered node config: its signal
/// command (a wait handle's `curl_cli`, with a token and the full signal
/// URL) in place of a short placeholder, a volume ID, a name, an address.
pub const HEAT_HEADROOM: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub hostname: String,
    /// Public keys for the login user (`core` on Flatcar).
    pub authorized_keys: Vec<String>,
    pub files: Vec<NodeFile>,
    pub units: Vec<NodeUnit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub path: String,
    /// Unix permission bits, as in `0o600`.
    pub mode: u32,
    pub contents: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUnit {
    pub name: String,
    /// The unit file; None for a unit the node has already (docker.service).
    pub contents: Option<String>,
    pub dropins: Vec<DropIn>,
    /// Started at every boot by systemd itself.
    pub enable: bool,
    /// Started at the first boot (and, with cloud-config, at every boot by
    /// the agent). Ignition can only enable, so it enables these too.
    pub start: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    pub name: String,
    pub contents: String,
}

impl NodeFile {
    pub fn new(path: &str, mode: u32, contents: impl Into<String>) -> NodeFile {
        let mut contents = contents.into();
        if !contents.ends_with('\n') {
            contents.push('\n');
        }
        NodeFile { path: path.to_string(), mode, contents }
    }
}

impl NodeUnit {
    /// A unit of ours, enabled and started.
    pub fn service(name: &str, contents: String) -> NodeUnit {
        NodeUnit { name: name.to_string(), contents: Some(contents), dropins: vec![], enable: true, start: true }
    }
}

impl NodeConfigFormat {
    /// The name of a node config of this format in the bundle.
    pub fn file_name(self, role: &str) -> String {
        match self {
            NodeConfigFormat::CloudConfig => format!("{role}.cloud-config"),
            NodeConfigFormat::Ignition => format!("{role}.ign"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NodeConfigFormat::CloudConfig => "cloud-config",
            NodeConfigFormat::Ignition => "ignition",
        }
    }
}

impl NodeConfig {
    pub fn render(&self, format: NodeConfigFormat) -> String {
        match format {
            NodeConfigFormat::CloudConfig => self.cloud_config(),
            NodeConfigFormat::Ignition => self.ignition(),
        }
    }

    /// Flatcar's `#cloud-config`: files first, then units, then each
    /// unit's `command: start` in order, as coreos-cloudinit applies them.
    pub fn cloud_config(&self) -> String {
        let doc = CloudConfig {
            hostname: &self.hostname,
            ssh_authorized_keys: &self.authorized_keys,
            write_files: self
                .files
                .iter()
                .map(|f| WriteFile {
                    path: &f.path,
                    permissions: format!("{:04o}", f.mode),
                    owner: "root:root",
                    content: LitStr(&f.contents),
                })
                .collect(),
            coreos: Coreos {
                units: self
                    .units
                    .iter()
                    .map(|u| CloudUnit {
                        name: &u.name,
                        enable: u.enable,
                        command: u.start.then_some("start"),
                        content: u.contents.as_deref().map(LitStr),
                        drop_ins: u
                            .dropins
                            .iter()
                            .map(|d| CloudDropIn { name: &d.name, content: LitStr(&d.contents) })
                            .collect(),
                    })
                    .collect(),
            },
        };
        // Literal blocks for file and unit contents (LitStr), and no folding
        // of long lines elsewhere: a key stays on one line, as people expect.
        let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
        let body = serde_saphyr::to_string_with_options(&doc, options).expect("plain data serialises");
        format!(
            "#cloud-config\n# Written by provision for Flatcar's coreos-cloudinit, which applies it at every boot.\n{body}"
        )
    }

    /// Ignition, spec 3.3.0. The host name is a file, units that must run
    /// are enabled (Ignition starts nothing), and file contents are data
    /// URLs, gzipped when that is smaller and Heat has nothing to fill in.
    pub fn ignition(&self) -> String {
        let mut files = vec![IgnFile {
            path: "/etc/hostname".into(),
            mode: 0o644,
            overwrite: true,
            contents: contents(&format!("{}\n", self.hostname)),
        }];
        files.extend(self.files.iter().map(|f| IgnFile {
            path: f.path.clone(),
            mode: f.mode,
            overwrite: true,
            contents: contents(&f.contents),
        }));
        let doc = Ignition {
            ignition: IgnVersion { version: "3.3.0" },
            passwd: Passwd { users: vec![User { name: LOGIN_USER, ssh_authorized_keys: &self.authorized_keys }] },
            storage: Storage { files },
            systemd: Systemd {
                units: self
                    .units
                    .iter()
                    .map(|u| IgnUnit {
                        name: &u.name,
                        enabled: (u.enable || u.start).then_some(true),
                        contents: u.contents.as_deref(),
                        dropins: u.dropins.iter().map(|d| IgnDropIn { name: &d.name, contents: &d.contents }).collect(),
                    })
                    .collect(),
            },
        };
        serde_json::to_string_pretty(&doc).expect("plain data serialises") + "\n"
    }
}

/// Nova's limit counts user_data after base64: every 3 bytes become 4.
pub fn user_data_size(text: &str) -> usize {
    text.len().div_ceil(3) * 4
}

/// A file's contents as a data URL: gzip and base64 when that is smaller,
/// else percent-encoded text. Heat's placeholders (`@@NAME@@`) stay
/// readable for `str_replace`, so contents holding one are never gzipped;
/// what Heat puts there (names, addresses, IDs, URLs, tokens) is made of
/// characters a data URL takes as they are.
fn contents(text: &str) -> IgnContents {
    let plain = format!("data:,{}", percent_encode(text));
    if !text.contains("@@") {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text.as_bytes()).expect("writing to memory");
        let zipped = gz.finish().expect("writing to memory");
        let packed = format!("data:;base64,{}", base64::engine::general_purpose::STANDARD.encode(zipped));
        if packed.len() < plain.len() {
            return IgnContents { source: packed, compression: Some("gzip") };
        }
    }
    IgnContents { source: plain, compression: None }
}

/// RFC 3986 unreserved characters (and Heat's `@@NAME@@` placeholders)
/// as they are; every other byte as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(len) = placeholder_len(rest) {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        if c.is_ascii_alphanumeric() || "-._~".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `@@NAME@@` at the start of TEXT (NAME in capitals and underscores).
fn placeholder_len(text: &str) -> Option<usize> {
    let inner = text.strip_prefix("@@")?;
    let end = inner.find("@@")?;
    let name = &inner[..end];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')).then_some(end + 4)
}

#[derive(Serialize)]
struct CloudConfig<'a> {
    hostname: &'a str,
    ssh_authorized_keys: &'a [String],
    write_files: Vec<WriteFile<'a>>,
    coreos: Coreos<'a>,
}

#[derive(Serialize)]
struct WriteFile<'a> {
    path: &'a str,
    permissions: String,
    owner: &'static str,
    content: LitStr<'a>,
}

#[derive(Serialize)]
struct Coreos<'a> {
    units: Vec<CloudUnit<'a>>,
}

#[derive(Serialize)]
struct CloudUnit<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    enable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<LitStr<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    drop_ins: Vec<CloudDropIn<'a>>,
}

#[derive(Serialize)]
struct CloudDropIn<'a> {
    name: &'a str,
    content: LitStr<'a>,
}

#[derive(Serialize)]
struct Ignition<'a> {
    ignition: IgnVersion,
    passwd: Passwd<'a>,
    storage: Storage,
    systemd: Systemd<'a>,
}

#[derive(Serialize)]
struct IgnVersion {
    version: &'static str,
}

#[derive(Serialize)]
struct Passwd<'a> {
    users: Vec<User<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User<'a> {
    name: &'a str,
    ssh_authorized_keys: &'a [String],
}

#[derive(Serialize)]
struct Storage {
    files: Vec<IgnFile>,
}

#[derive(Serialize)]
struct IgnFile {
    path: String,
    /// Decimal, as Ignition's JSON has it (0o600 is 384).
    mode: u32,
    overwrite: bool,
    contents: IgnContents,
}

#[derive(Serialize)]
struct IgnContents {
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<&'static str>,
}

#[derive(Serialize)]
struct Systemd<'a> {
    units: Vec<IgnUnit<'a>>,
}

#[derive(Serialize)]
struct IgnUnit<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropins: Vec<IgnDropIn<'a>>,
}

#[derive(Serialize)]
struct IgnDropIn<'a> {
    name: &'a str,
    contents: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeConfig {
        NodeConfig {
            hostname: "@@NODE_NAME@@".into(),
            authorized_keys: vec!["ssh-ed25519 AAAAC3Nza key".into()],
            files: vec![
                NodeFile::new("/etc/provision/signal-token", 0o600, "@@SIGNAL_TOKEN@@"),
                NodeFile::new("/etc/big", 0o644, "same line\n".repeat(200)),
                NodeFile::new("/etc/odd", 0o644, "a: b\n- path: /etc/passwd\r- c\n"),
            ],
            units: vec![
                NodeUnit::service("x.service", "[Service]\nExecStart=/bin/true\n".into()),
                NodeUnit {
                    name: "docker.service".into(),
                    contents: None,
                    dropins: vec![DropIn { name: "10-x.conf".into(), contents: "[Unit]\nAfter=x.service\n".into() }],
                    enable: true,
                    start: false,
                },
            ],
        }
    }

    #[test]
    fn cloud_config_keeps_every_value_a_value() {
        let text = node().cloud_config();
        assert!(text.starts_with("#cloud-config\n"));
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["hostname"], "@@NODE_NAME@@");
        assert_eq!(v["write_files"].as_array().unwrap().len(), 3, "a line break in a value adds no entry");
        assert_eq!(v["write_files"][2]["content"], "a: b\n- path: /etc/passwd\r- c\n");
        assert_eq!(v["write_files"][0]["permissions"], "0600");
        assert_eq!(v["write_files"][0]["content"], "@@SIGNAL_TOKEN@@\n");
        assert_eq!(v["coreos"]["units"][0]["command"], "start");
        assert_eq!(v["coreos"]["units"][1]["drop_ins"][0]["name"], "10-x.conf");
        assert!(v["coreos"]["units"][1].get("command").is_none());
    }

    #[test]
    fn ignition_declares_the_same_node() {
        let v: serde_json::Value = serde_json::from_str(&node().ignition()).unwrap();
        assert_eq!(v["ignition"]["version"], "3.3.0");
        assert_eq!(v["passwd"]["users"][0]["name"], "core");
        let files = v["storage"]["files"].as_array().unwrap();
        assert_eq!(files[0]["path"], "/etc/hostname");
        assert_eq!(files[0]["contents"]["source"], "data:,@@NODE_NAME@@%0A", "placeholders stay for Heat");
        assert_eq!(files[1]["mode"], 384);
        assert_eq!(files[1]["contents"]["source"], "data:,@@SIGNAL_TOKEN@@%0A");
        assert_eq!(files[2]["contents"]["compression"], "gzip", "a repetitive file is smaller gzipped");
        assert!(files[3]["contents"].get("compression").is_none(), "a short one is not");
        let units = v["systemd"]["units"].as_array().unwrap();
        assert_eq!(units[0]["enabled"], true);
        assert_eq!(units[1]["dropins"][0]["contents"], "[Unit]\nAfter=x.service\n");
    }

    #[test]
    fn data_urls_round_trip() {
        assert_eq!(percent_encode("a b/@@X@@:é"), "a%20b%2F@@X@@%3A%C3%A9");
        assert_eq!(percent_encode("a@@b"), "a%40%40b", "not a placeholder");
        assert_eq!(user_data_size("abcd"), 8);
    }
}

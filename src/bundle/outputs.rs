//! The Heat template's outputs, named once: the template
//! (`templates/heat/stack.yaml`) writes them, and the later stages read
//! them through these names (a test checks the two agree). [`StackOutputs`]
//! is the typed view of what a stack gave.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

pub const MANAGER_NAME: &str = "manager_name";
pub const MANAGER_FLOATING_IP: &str = "manager_floating_ip";
pub const MANAGER_PRIVATE_IP: &str = "manager_private_ip";
pub const WORKER_PRIVATE_IPS: &str = "worker_private_ips";
pub const WORKER_NAMES: &str = "worker_names";
pub const REGISTRY: &str = "registry";
pub const CACHE: &str = "cache";

/// Every output of the template, sorted.
pub const NAMES: [&str; 7] =
    [CACHE, MANAGER_FLOATING_IP, MANAGER_NAME, MANAGER_PRIVATE_IP, REGISTRY, WORKER_NAMES, WORKER_PRIVATE_IPS];

/// A service the stack publishes, as `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(text: &str) -> Option<Endpoint> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Endpoint { host: host.to_string(), port: port.parse().ok()? })
    }
}

/// What a stack's outputs say, where they say it: an output that is
/// missing (a stack still in progress, or made by an older template) or of
/// another shape reads as `None`. The hand-off reads the node lists itself,
/// with its own errors for a failed stack's gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOutputs {
    pub manager_name: Option<String>,
    pub manager_floating_ip: Option<IpAddr>,
    pub manager_private_ip: Option<IpAddr>,
    pub registry: Option<Endpoint>,
    pub cache: Option<Endpoint>,
}

impl StackOutputs {
    pub fn read(outputs: &BTreeMap<String, Value>) -> StackOutputs {
        let text = |k: &str| outputs.get(k).and_then(Value::as_str);
        StackOutputs {
            manager_name: text(MANAGER_NAME).map(str::to_string),
            manager_floating_ip: text(MANAGER_FLOATING_IP).and_then(|a| a.parse().ok()),
            manager_private_ip: text(MANAGER_PRIVATE_IP).and_then(|a| a.parse().ok()),
            registry: text(REGISTRY).and_then(Endpoint::parse),
            cache: text(CACHE).and_then(Endpoint::parse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_host_and_port() {
        let e = |host: &str, port| Some(Endpoint { host: host.into(), port });
        assert_eq!(Endpoint::parse("reg.example.com:5000"), e("reg.example.com", 5000));
        assert_eq!(Endpoint::parse("reg.example.com:443"), e("reg.example.com", 443));
        assert_eq!(Endpoint::parse("[2001:db8::1]:5000"), e("2001:db8::1", 5000));
        for bad in ["reg.example.com", ":5000", "reg:", "reg:http", "reg:70000", ""] {
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn outputs_read_typed_and_what_is_missing_is_none() {
        let map: BTreeMap<String, Value> = serde_json::from_value(serde_json::json!({
            "manager_name": "myhost", "manager_floating_ip": "203.0.113.5", "manager_private_ip": "not an address",
            "registry": "myhost.example.com:5000", "worker_names": ["myhost-worker-0"],
        }))
        .unwrap();
        let o = StackOutputs::read(&map);
        assert_eq!(o.manager_name.as_deref(), Some("myhost"));
        assert_eq!(o.manager_floating_ip, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(o.manager_private_ip, None);
        assert_eq!(o.registry.map(|r| (r.host, r.port)), Some(("myhost.example.com".into(), 5000)));
        assert_eq!(o.cache, None);
        assert_eq!(StackOutputs::read(&BTreeMap::new()), StackOutputs::default());
    }
}

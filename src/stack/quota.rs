//! Quota preflight: what a create takes, against what the project may
//! still use, before anything is made. A quota that runs out halfway
//! leaves a half-made stack; this says so at the start, as a table.

use serde::Serialize;
use serde_json::Value;

use super::api::{neutron, nova};
use super::cloud::Cloud;
use super::{Found, StackError};
use crate::bundle::exposure::Footprint;

/// One quota: what the stack needs, what the project uses, its limit
/// (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub what: &'static str,
    pub need: u64,
    pub used: u64,
    pub limit: Option<u64>,
}

impl Row {
    pub fn fits(&self) -> bool {
        self.limit.is_none_or(|l| self.used.saturating_add(self.need) <= l)
    }
}

/// The stack does not fit the project's quotas.
#[derive(Debug, thiserror::Error)]
#[error("{}", table(.0))]
pub struct QuotaError(pub Vec<Row>);

/// The rows as a table, the ones that do not fit marked.
pub fn table(rows: &[Row]) -> String {
    let mut text = String::from("the stack does not fit the project's quotas (nothing was made):\n");
    text.push_str(&format!("  {:<22} {:>8} {:>8} {:>8}\n", "quota", "need", "used", "limit"));
    for r in rows {
        let limit = r.limit.map_or("none".to_string(), |l| l.to_string());
        let mark = if r.fits() { "" } else { "  <- short" };
        text.push_str(&format!("  {:<22} {:>8} {:>8} {:>8}{mark}\n", r.what, r.need, r.used, limit));
    }
    text.push_str(
        "  raise them (openstack quota set), free some, or make a smaller stack; \
                   --skip-quota-check if the cloud reports its use wrongly",
    );
    text
}

/// Nova's limits and Neutron's quota details against the footprint and
/// the flavors' sizes.
pub fn rows(f: &Footprint, cores: u64, ram_mb: u64, nova_limits: &Value, neutron_quota: &Value) -> Vec<Row> {
    let absolute = &nova_limits["limits"]["absolute"];
    let nova = |what, need, max: &str, used: &str| Row {
        what,
        need,
        used: absolute[used].as_u64().unwrap_or(0),
        limit: absolute[max].as_i64().filter(|l| *l >= 0).map(|l| l as u64),
    };
    let q = &neutron_quota["quota"];
    let net = |what, need, key: &str| Row {
        what,
        need,
        used: q[key]["used"].as_u64().unwrap_or(0) + q[key]["reserved"].as_u64().unwrap_or(0),
        limit: q[key]["limit"].as_i64().filter(|l| *l >= 0).map(|l| l as u64),
    };
    vec![
        nova("instances", f.servers, "maxTotalInstances", "totalInstancesUsed"),
        nova("cores", cores, "maxTotalCores", "totalCoresUsed"),
        nova("ram (MiB)", ram_mb, "maxTotalRAMSize", "totalRAMUsed"),
        net("floating IPs", f.floating_ips, "floatingip"),
        net("ports", f.ports, "port"),
        net("networks", f.networks, "network"),
        net("subnets", f.subnets, "subnet"),
        net("routers", f.routers, "router"),
        net("security groups", f.security_groups, "security_group"),
        net("security group rules", f.security_group_rules, "security_group_rule"),
    ]
}

/// Asks Nova and Neutron, and refuses a stack that does not fit. Volumes
/// are checked by Cinder itself: the local cloud has none, and provision
/// does not call it otherwise.
pub async fn check(cloud: &Cloud, f: &Footprint, found: &Found) -> Result<Vec<Row>, StackError> {
    let project = cloud.project_id().unwrap_or_default();
    let (nova_call, neutron_call) = (nova::limits(), neutron::quota_details(&project));
    let (limits, quota) = tokio::join!(cloud.send(&nova_call), cloud.send(&neutron_call));
    let (limits, quota) = (limits?, quota?);
    let workers = f.servers.saturating_sub(1);
    let cores = found.manager_flavor.vcpus + workers * found.worker_flavor.vcpus;
    let ram = found.manager_flavor.ram_mb + workers * found.worker_flavor.ram_mb;
    let rows = rows(f, cores, ram, &limits, &quota);
    if rows.iter().all(Row::fits) { Ok(rows) } else { Err(StackError::Quota(QuotaError(rows))) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn footprint() -> Footprint {
        Footprint {
            servers: 3,
            floating_ips: 1,
            ports: 5,
            networks: 1,
            subnets: 1,
            routers: 1,
            security_groups: 2,
            security_group_rules: 22,
            volumes: 0,
            volume_gb: 0,
        }
    }

    #[test]
    fn a_stack_that_does_not_fit_is_shown_with_need_used_and_limit() {
        let limits = json!({"limits": {"absolute": {"maxTotalInstances": 4, "totalInstancesUsed": 2,
            "maxTotalCores": -1, "totalCoresUsed": 7, "maxTotalRAMSize": 51200, "totalRAMUsed": 2048}}});
        let quota = json!({"quota": {"floatingip": {"limit": 1, "used": 1, "reserved": 0},
            "port": {"limit": 50, "used": 3, "reserved": 0}, "network": {"limit": 10, "used": 1, "reserved": 0},
            "subnet": {"limit": 10, "used": 1, "reserved": 0}, "router": {"limit": 10, "used": 1, "reserved": 0},
            "security_group": {"limit": 10, "used": 1, "reserved": 0},
            "security_group_rule": {"limit": 100, "used": 4, "reserved": 0}}});
        let rows = rows(&footprint(), 3, 6144, &limits, &quota);
        let short: Vec<&str> = rows.iter().filter(|r| !r.fits()).map(|r| r.what).collect();
        assert_eq!(short, ["instances", "floating IPs"]);
        let cores = rows.iter().find(|r| r.what == "cores").unwrap();
        assert_eq!((cores.need, cores.used, cores.limit), (3, 7, None), "-1 is unlimited");
        let text = table(&rows);
        assert!(text.contains("instances                     3        2        4  <- short"), "{text}");
        assert!(text.contains("cores                         3        7     none\n"), "{text}");
        let fits = json!({"limits": {"absolute": {"maxTotalInstances": 10}}, "quota": {}});
        assert!(super::rows(&footprint(), 3, 6144, &fits, &json!({})).iter().all(Row::fits));
    }
}

//! The OpenStack calls this tool makes, as data. No crate has Heat, so its
//! endpoints are described here on `openstack_sdk`'s [`RestEndpoint`]; the
//! few Nova, Glance and Neutron lookups use the same small type rather than
//! pulling in the SDK's generated service crates (minutes of build for five
//! requests). `openstack_sdk` still does the rest: Keystone, the catalog,
//! version discovery, re-authentication.

use std::borrow::Cow;

use http::Method;
use openstack_sdk::api::{BodyError, QueryParams, RestEndpoint};
use openstack_sdk::types::{ApiVersion, ServiceType};
use serde_json::{Value, json};

/// Heat is in every catalog as `orchestration`.
pub const ORCHESTRATION: &str = "orchestration";

/// One request: method, service, path under the service's catalog URL,
/// query and JSON body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub service: Service,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Orchestration,
    Compute,
    Image,
    Network,
}

impl Call {
    fn new(method: Method, service: Service, path: impl Into<String>) -> Call {
        Call { method, service, path: path.into(), query: Vec::new(), body: None }
    }

    fn query(mut self, key: &'static str, value: impl ToString) -> Call {
        self.query.push((key, value.to_string()));
        self
    }

    fn body(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    /// Safe to send again when the first try got no answer.
    pub fn idempotent(&self) -> bool {
        self.method == Method::GET
    }

    /// For messages: `GET stacks/x/y/events`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl RestEndpoint for Call {
    fn method(&self) -> Method {
        self.method.clone()
    }

    fn endpoint(&self) -> Cow<'static, str> {
        Cow::Owned(self.path.clone())
    }

    fn service_type(&self) -> ServiceType {
        match self.service {
            Service::Orchestration => ServiceType::Other(ORCHESTRATION.into()),
            Service::Compute => ServiceType::Compute,
            Service::Image => ServiceType::Image,
            Service::Network => ServiceType::Network,
        }
    }

    fn parameters(&self) -> QueryParams<'_> {
        let mut q = QueryParams::default();
        for (k, v) in &self.query {
            q.push(*k, v.as_str());
        }
        q
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        match &self.body {
            None => Ok(None),
            Some(v) => Ok(Some(("application/json", serde_json::to_vec(v)?))),
        }
    }

    /// Every request says who sends it, for the cloud's logs.
    fn request_headers(&self) -> Option<&http::HeaderMap> {
        static HEADERS: std::sync::OnceLock<http::HeaderMap> = std::sync::OnceLock::new();
        Some(HEADERS.get_or_init(|| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::USER_AGENT, http::HeaderValue::from_static(super::cloud::USER_AGENT));
            h
        }))
    }

    /// No microversion header: Nova's base 2.1 has all this tool asks.
    fn min_version(&self) -> Option<ApiVersion> {
        None
    }
}

/// What Heat needs to make or change a stack: the rendered bundle.
#[derive(Debug, Clone)]
pub struct StackBody {
    pub template: String,
    pub environment: String,
    pub files: serde_json::Map<String, Value>,
}

impl StackBody {
    fn json(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("template".into(), json!(self.template));
        m.insert("environment".into(), json!(self.environment));
        m.insert("files".into(), Value::Object(self.files.clone()));
        m
    }
}

/// How a create or update runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub timeout_mins: Option<u64>,
    /// Heat deletes what it made when the create fails.
    pub rollback: bool,
    pub tags: Vec<String>,
}

pub mod heat {
    use super::*;

    fn stack_path(name: &str, id: &str) -> String {
        format!("stacks/{name}/{id}")
    }

    pub fn validate(body: &StackBody) -> Call {
        Call::new(Method::POST, Service::Orchestration, "validate").body(Value::Object(body.json()))
    }

    /// The project's stacks (names, statuses, tags), newest first.
    pub fn list() -> Call {
        Call::new(Method::GET, Service::Orchestration, "stacks").query("limit", 1000)
    }

    /// The project's stacks that carry `tag`.
    pub fn list_tagged(tag: &str) -> Call {
        list().query("tags", tag)
    }

    /// Heat answers a name with a redirect to `stacks/NAME/ID`, or 404.
    pub fn find(name: &str) -> Call {
        Call::new(Method::GET, Service::Orchestration, format!("stacks/{name}"))
    }

    pub fn show(name: &str, id: &str) -> Call {
        Call::new(Method::GET, Service::Orchestration, stack_path(name, id))
    }

    pub fn create(name: &str, body: &StackBody, opts: &Options) -> Call {
        let mut m = body.json();
        m.insert("stack_name".into(), json!(name));
        m.insert("disable_rollback".into(), json!(!opts.rollback));
        if let Some(t) = opts.timeout_mins {
            m.insert("timeout_mins".into(), json!(t));
        }
        if !opts.tags.is_empty() {
            m.insert("tags".into(), json!(opts.tags.join(",")));
        }
        Call::new(Method::POST, Service::Orchestration, "stacks").body(Value::Object(m))
    }

    /// PATCH keeps every parameter the operator does not give again
    /// (`openstack stack update --existing`).
    pub fn update(name: &str, id: &str, body: &StackBody, opts: &Options) -> Call {
        let mut m = body.json();
        m.insert("disable_rollback".into(), json!(!opts.rollback));
        if let Some(t) = opts.timeout_mins {
            m.insert("timeout_mins".into(), json!(t));
        }
        if !opts.tags.is_empty() {
            m.insert("tags".into(), json!(opts.tags.join(",")));
        }
        Call::new(Method::PATCH, Service::Orchestration, stack_path(name, id)).body(Value::Object(m))
    }

    pub fn preview_create(name: &str, body: &StackBody) -> Call {
        let mut m = body.json();
        m.insert("stack_name".into(), json!(name));
        Call::new(Method::POST, Service::Orchestration, "stacks/preview").body(Value::Object(m))
    }

    pub fn preview_update(name: &str, id: &str, body: &StackBody) -> Call {
        Call::new(Method::PATCH, Service::Orchestration, format!("{}/preview", stack_path(name, id)))
            .body(Value::Object(body.json()))
    }

    pub fn delete(name: &str, id: &str) -> Call {
        Call::new(Method::DELETE, Service::Orchestration, stack_path(name, id))
    }

    /// Events after `marker`, oldest first, nested stacks included.
    pub fn events(name: &str, id: &str, marker: Option<&str>) -> Call {
        let mut c = Call::new(Method::GET, Service::Orchestration, format!("{}/events", stack_path(name, id)))
            .query("sort_dir", "asc")
            .query("nested_depth", 5);
        if let Some(m) = marker {
            c = c.query("marker", m);
        }
        c
    }

    /// The newest event, to start an update's event stream after it.
    pub fn last_event(name: &str, id: &str) -> Call {
        Call::new(Method::GET, Service::Orchestration, format!("{}/events", stack_path(name, id)))
            .query("sort_dir", "desc")
            .query("limit", 1)
            .query("nested_depth", 5)
    }

    /// What Heat holds for a stack: `template`, `files` or `environment`.
    pub fn stored(name: &str, id: &str, what: &str) -> Call {
        Call::new(Method::GET, Service::Orchestration, format!("{}/{what}", stack_path(name, id)))
    }

    pub fn resources(name: &str, id: &str) -> Call {
        Call::new(Method::GET, Service::Orchestration, format!("{}/resources", stack_path(name, id)))
            .query("nested_depth", 5)
    }
}

pub mod lookup {
    use super::*;

    /// With their vCPUs and RAM, for the quota check.
    pub fn flavors() -> Call {
        Call::new(Method::GET, Service::Compute, "flavors/detail")
    }

    pub fn keypairs() -> Call {
        Call::new(Method::GET, Service::Compute, "os-keypairs")
    }

    pub fn images() -> Call {
        Call::new(Method::GET, Service::Image, "v2/images").query("limit", 1000)
    }

    /// Glance's exact-name filter, for an image past the first page.
    pub fn images_named(name: &str) -> Call {
        Call::new(Method::GET, Service::Image, "v2/images").query("name", name)
    }

    /// One image by its ID; `None` for text that is not shaped like one
    /// (8-4-4-4-12 hex digits), so no name ever goes into the path.
    pub fn image(id: &str) -> Option<Call> {
        let groups: Vec<&str> = id.split('-').collect();
        let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
        shaped.then(|| Call::new(Method::GET, Service::Image, format!("v2/images/{id}")))
    }

    pub fn networks() -> Call {
        Call::new(Method::GET, Service::Network, "v2.0/networks")
    }
}

pub mod nova {
    use super::*;

    /// The servers with their names (to tell the stack's nodes apart).
    pub fn servers() -> Call {
        Call::new(Method::GET, Service::Compute, "servers/detail")
    }

    /// The project's compute limits and what it uses of them.
    pub fn limits() -> Call {
        Call::new(Method::GET, Service::Compute, "limits")
    }

    /// The last `lines` lines of a server's console.
    pub fn console_log(server_id: &str, lines: u32) -> Call {
        Call::new(Method::POST, Service::Compute, format!("servers/{server_id}/action"))
            .body(json!({"os-getConsoleOutput": {"length": lines}}))
    }
}

pub mod neutron {
    use super::*;

    pub fn create_floating_ip(network_id: &str, description: &str) -> Call {
        Call::new(Method::POST, Service::Network, "v2.0/floatingips")
            .body(json!({"floatingip": {"floating_network_id": network_id, "description": description}}))
    }

    pub fn floating_ip(id: &str) -> Call {
        Call::new(Method::GET, Service::Network, format!("v2.0/floatingips/{id}"))
    }

    pub fn delete_floating_ip(id: &str) -> Call {
        Call::new(Method::DELETE, Service::Network, format!("v2.0/floatingips/{id}"))
    }

    /// The project's floating IPs; ours are told apart by tag or description.
    pub fn floating_ips() -> Call {
        Call::new(Method::GET, Service::Network, "v2.0/floatingips")
    }

    /// Replaces a floating IP's tags.
    pub fn set_tags(id: &str, tags: &[String]) -> Call {
        Call::new(Method::PUT, Service::Network, format!("v2.0/floatingips/{id}/tags")).body(json!({"tags": tags}))
    }

    /// Limit, use and reservations of each network resource of a project.
    pub fn quota_details(project_id: &str) -> Call {
        Call::new(Method::GET, Service::Network, format!("v2.0/quotas/{project_id}/details"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_is_a_patch_that_keeps_the_bundle_and_never_sends_a_name() {
        let body = StackBody { template: "t".into(), environment: "e".into(), files: Default::default() };
        let c = heat::update("s", "id1", &body, &Options { timeout_mins: Some(30), ..Default::default() });
        assert_eq!(c.method, Method::PATCH);
        assert_eq!(c.path, "stacks/s/id1");
        let b = c.body.clone().unwrap();
        assert_eq!(b["template"], "t");
        assert_eq!(b["timeout_mins"], 30);
        assert_eq!(b["disable_rollback"], true);
        assert!(b.get("stack_name").is_none());
        assert!(!c.idempotent());
    }

    #[test]
    fn events_resume_after_the_marker() {
        let c = heat::events("s", "i", Some("ev9"));
        assert!(c.query.contains(&("marker", "ev9".to_string())));
        assert!(c.query.contains(&("sort_dir", "asc".to_string())));
        assert!(c.idempotent());
    }

    #[test]
    fn an_image_is_asked_for_by_id_only_when_it_is_one() {
        let c = lookup::image("0f3c8e2a-4b1d-4c6e-9a7b-1234567890ab").unwrap();
        assert_eq!(c.path, "v2/images/0f3c8e2a-4b1d-4c6e-9a7b-1234567890ab");
        for not_an_id in
            ["flatcar", "../v2/images", "0f3c8e2a-4b1d-4c6e-9a7b-1234567890a/", "0f3c8e2a4b1d4c6e9a7b1234567890ab", ""]
        {
            assert!(lookup::image(not_an_id).is_none(), "{not_an_id}");
        }
        let named = lookup::images_named("Flatcar Stable 4081");
        assert_eq!(
            (named.path.as_str(), named.query.clone()),
            ("v2/images", vec![("name", "Flatcar Stable 4081".to_string())])
        );
    }
}

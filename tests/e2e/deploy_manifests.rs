//! The deployment files checked against the code they run: the Kubernetes manifests
//! (`deploy/kubernetes/`), `docker-compose.yml` and the `Dockerfile`.
//!
//! Nothing here starts a broker or a cluster. Each test reads the files as YAML (or Dockerfile
//! instructions) and holds them to what the code says: the subcommands `brokerd --help` lists,
//! the default gRPC ports in `broker_common::config`, the settings each crate reads, the S3
//! client's own variable names, the gateway's health routes, the workspace's binaries and Rust
//! version. Every test collects all its problems before failing, each naming the file, the
//! document and the offending value, so one run shows everything to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use broker_common::config::{
    ACCESS_PORT, CommonConfig, EVENTS_PORT, FILETRANSFER_PORT, SERVICE_URL_SETTINGS, TOKEN_PORT,
};
use broker_tests::broker::brokerd_binary;
use serde::Deserialize;
use serde_norway::Value;

/// The image every Broker container runs; its entry point is `brokerd` (checked against the
/// Dockerfile by `the_dockerfile_builds_and_ships_the_workspace_binaries`).
const IMAGE: &str = "broker/brokerd";

/// The gateway's health routes, where the HTTP probes must point.
const HEALTH_ROUTES: &str = include_str!("../../crates/gateway/src/routes/health.rs");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// The gRPC port a service run alone listens on by default, from the code's constants.
fn default_grpc_port(service: &str) -> Option<u16> {
    match service {
        "token" => Some(TOKEN_PORT),
        "access" => Some(ACCESS_PORT),
        "filetransfer" => Some(FILETRANSFER_PORT),
        "events" => Some(EVENTS_PORT),
        _ => None,
    }
}

/// The services production runs one per Deployment: the gateway and every gRPC service.
fn services() -> Vec<&'static str> {
    ["gateway", "token", "access", "filetransfer", "events"].to_vec()
}

/// Problems found so far; the test fails listing all of them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn assert_none(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} problem(s):\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading YAML.

/// One YAML document of one file.
struct Doc {
    file: String,
    index: usize,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        str_at(&self.value, &["kind"]).unwrap_or("?")
    }

    fn name(&self) -> &str {
        str_at(&self.value, &["metadata", "name"]).unwrap_or("?")
    }

    fn namespace(&self) -> Option<&str> {
        str_at(&self.value, &["metadata", "namespace"])
    }

    /// Where the document is, for messages: `deploy/kubernetes/token.yaml #2 (Service token)`.
    fn at(&self) -> String {
        format!(
            "{} #{} ({} {})",
            self.file,
            self.index + 1,
            self.kind(),
            self.name()
        )
    }
}

fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path).and_then(Value::as_str)
}

fn seq(value: Option<&Value>) -> &[Value] {
    value
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A mapping of strings (labels, annotations, ConfigMap data) as owned pairs; numbers and
/// booleans as YAML writes them.
fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), scalar(value)?)))
        .collect()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    seq(value).iter().filter_map(scalar).collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every document of every manifest under `deploy/kubernetes/` (not the kustomization, which
/// is kustomize's input rather than an object), in file-name order.
fn kubernetes_docs() -> Vec<Doc> {
    let mut docs = Vec::new();
    for path in kubernetes_files()
        .into_iter()
        .filter(|path| !path.ends_with("kustomization.yaml"))
    {
        let text = std::fs::read_to_string(&path).expect("reading a manifest");
        for (index, document) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{} #{}: {error}", relative(&path), index + 1));
            if !value.is_null() {
                docs.push(Doc {
                    file: relative(&path),
                    index,
                    value,
                });
            }
        }
    }
    docs
}

fn kubernetes_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

fn kubernetes_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubernetes_dir())
        .expect("reading deploy/kubernetes")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

/// `docker-compose.yml` with its `<<: *anchor` merges applied, as Compose applies them.
fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml"))
        .expect("reading docker-compose.yml");
    let mut value: Value = serde_norway::from_str(&text).expect("docker-compose.yml is YAML");
    value
        .apply_merge()
        .expect("docker-compose.yml's merge keys apply");
    value
}

// ---------------------------------------------------------------------------------------------
// What the code says.

/// Every environment variable some crate reads: the settings tables the README is checked
/// against.
fn settings() -> BTreeSet<&'static str> {
    [
        broker_common::config::SETTINGS,
        SERVICE_URL_SETTINGS,
        broker_token::config::SETTINGS,
        broker_filetransfer::SETTINGS,
        broker_events::SETTINGS,
        broker_gateway::SETTINGS,
    ]
    .into_iter()
    .flatten()
    .map(|setting| setting.name)
    .collect()
}

/// Whether `name` is read by a Broker process: a setting, or an `AWS_*` variable the S3
/// client (`AmazonS3Builder::from_env`, which ignores names it does not know) takes.
fn is_read(settings: &BTreeSet<&str>, name: &str) -> bool {
    settings.contains(name)
        || (name.starts_with("AWS_")
            && object_store::aws::AmazonS3ConfigKey::from_str(&name.to_ascii_lowercase()).is_ok())
}

/// The commands `brokerd --help` lists: the first word of each entry of its lists, indented by
/// two spaces (`  token     the token service`; descriptions continue further in), and the word
/// after `brokerd` in a usage line (`brokerd migrate [SERVICE...]`).
fn brokerd_commands() -> BTreeSet<String> {
    let binary = brokerd_binary();
    let output = Command::new(&binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|error| panic!("running {} --help: {error}", binary.display()));
    assert!(
        output.status.success(),
        "{} --help failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let usage = String::from_utf8_lossy(&output.stdout);
    let mut names = BTreeSet::new();
    for line in usage.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("  ")
            && !line.starts_with("   ")
            && let Some(first) = words.first()
        {
            names.insert(first.to_string());
        }
        for pair in words.windows(2) {
            if pair[0] == "brokerd" {
                names.insert(pair[1].to_owned());
            }
        }
    }
    names.retain(|name| {
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    names
}

// ---------------------------------------------------------------------------------------------
// Kubernetes objects.

/// A port a Service, probe or policy refers to: a container port's name or its number.
#[derive(Debug, Clone, PartialEq)]
enum PortRef {
    Name(String),
    Number(u64),
}

impl PortRef {
    fn of(value: &Value) -> Option<Self> {
        match value {
            Value::String(name) => Some(Self::Name(name.clone())),
            Value::Number(number) => number.as_u64().map(Self::Number),
            _ => None,
        }
    }
}

impl Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name:?}"),
            Self::Number(number) => write!(f, "{number}"),
        }
    }
}

/// A pod template's container.
struct Container<'a> {
    name: String,
    value: &'a Value,
}

impl Container<'_> {
    fn image(&self) -> &str {
        str_at(self.value, &["image"]).unwrap_or("")
    }

    fn runs_brokerd(&self) -> bool {
        let image = self.image();
        image == IMAGE || image.starts_with(&format!("{IMAGE}:"))
    }

    fn args(&self) -> Vec<String> {
        strings(self.value.get("args"))
    }

    /// `(name, number)` of each declared port.
    fn ports(&self) -> Vec<(Option<String>, u64)> {
        seq(self.value.get("ports"))
            .iter()
            .filter_map(|port| {
                Some((
                    str_at(port, &["name"]).map(str::to_owned),
                    get(port, &["containerPort"])?.as_u64()?,
                ))
            })
            .collect()
    }

    fn port_named(&self, name: &str) -> Option<u64> {
        self.ports()
            .into_iter()
            .find(|(port_name, _)| port_name.as_deref() == Some(name))
            .map(|(_, number)| number)
    }

    fn has_port(&self, port: &PortRef) -> bool {
        self.ports().iter().any(|(name, number)| match port {
            PortRef::Name(wanted) => name.as_deref() == Some(wanted),
            PortRef::Number(wanted) => number == wanted,
        })
    }

    /// The variables the container gets, by name: from the ConfigMaps and Secrets in
    /// `envFrom`, then `env` (values from a Secret or ConfigMap key are looked up; `None` when
    /// the object or key is missing, which `every_variable_is_a_setting_the_code_reads`
    /// reports).
    fn env(&self, objects: &Objects) -> BTreeMap<String, Option<String>> {
        let mut env = BTreeMap::new();
        for source in seq(self.value.get("envFrom")) {
            for (kind, key) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
                if let Some(name) = str_at(source, &[key, "name"]) {
                    for (name, value) in objects.data(kind, name) {
                        env.insert(name, Some(value));
                    }
                }
            }
        }
        for variable in seq(self.value.get("env")) {
            let Some(name) = str_at(variable, &["name"]) else {
                continue;
            };
            let value = match str_at(variable, &["value"]) {
                Some(value) => Some(value.to_owned()),
                None => objects.referenced(variable).ok(),
            };
            env.insert(name.to_owned(), value);
        }
        env
    }
}

/// A Deployment or Job: its pod template.
struct Workload<'a> {
    doc: &'a Doc,
    pod: &'a Value,
}

impl<'a> Workload<'a> {
    fn pod_labels(&self) -> BTreeMap<String, String> {
        string_map(get(self.pod, &["metadata", "labels"]))
    }

    fn pod_spec(&self) -> Option<&'a Value> {
        self.pod.get("spec")
    }

    fn containers(&self) -> Vec<Container<'a>> {
        seq(self.pod_spec().and_then(|spec| spec.get("containers")))
            .iter()
            .map(|value| Container {
                name: str_at(value, &["name"]).unwrap_or("?").to_owned(),
                value,
            })
            .collect()
    }

    /// The one `broker/brokerd` container and the service it runs (`args[0]`).
    fn brokerd(&self) -> Option<(Container<'a>, String)> {
        let container = self
            .containers()
            .into_iter()
            .find(Container::runs_brokerd)?;
        let service = container.args().first().cloned().unwrap_or_default();
        Some((container, service))
    }

    fn at(&self) -> String {
        self.doc.at()
    }
}

/// Every Kubernetes object, looked up by kind and name.
struct Objects {
    docs: Vec<Doc>,
}

impl Objects {
    fn load() -> Self {
        Self {
            docs: kubernetes_docs(),
        }
    }

    fn of_kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Doc> + use<'a> {
        let kind = kind.to_owned();
        self.docs.iter().filter(move |doc| doc.kind() == kind)
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.of_kind(kind).find(|doc| doc.name() == name)
    }

    fn deployments(&self) -> Vec<Workload<'_>> {
        self.of_kind("Deployment")
            .filter_map(|doc| {
                Some(Workload {
                    doc,
                    pod: get(&doc.value, &["spec", "template"])?,
                })
            })
            .collect()
    }

    fn workloads(&self) -> Vec<Workload<'_>> {
        let jobs = self.of_kind("Job").filter_map(|doc| {
            Some(Workload {
                doc,
                pod: get(&doc.value, &["spec", "template"])?,
            })
        });
        self.deployments().into_iter().chain(jobs).collect()
    }

    /// The Deployment running `service` alone.
    fn deployment_of(&self, service: &str) -> Option<Workload<'_>> {
        self.deployments().into_iter().find(|deployment| {
            deployment
                .brokerd()
                .is_some_and(|(_, runs)| runs == service)
        })
    }

    /// The Deployments whose pods `selector` (a label map or a `LabelSelector`) selects.
    fn selected(&self, selector: &Selector) -> Vec<Workload<'_>> {
        self.deployments()
            .into_iter()
            .filter(|deployment| selector.matches(&deployment.pod_labels()))
            .collect()
    }

    /// The keys and values of a ConfigMap's `data` or a Secret's `stringData` and `data`.
    fn data(&self, kind: &str, name: &str) -> BTreeMap<String, String> {
        let Some(doc) = self.find(kind, name) else {
            return BTreeMap::new();
        };
        let mut data = string_map(doc.value.get("data"));
        data.extend(string_map(doc.value.get("stringData")));
        data
    }

    /// The value a `valueFrom.secretKeyRef` or `configMapKeyRef` names, or why it cannot.
    fn referenced(&self, variable: &Value) -> Result<String, String> {
        for (kind, key) in [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")] {
            let Some(reference) = get(variable, &["valueFrom", key]) else {
                continue;
            };
            let name = str_at(reference, &["name"]).unwrap_or("");
            let wanted = str_at(reference, &["key"]).unwrap_or("");
            if self.find(kind, name).is_none() {
                return Err(format!("{kind} {name:?} does not exist"));
            }
            return self
                .data(kind, name)
                .remove(wanted)
                .ok_or_else(|| format!("{kind} {name:?} has no key {wanted:?}"));
        }
        Err("neither value nor a secretKeyRef/configMapKeyRef".to_owned())
    }
}

/// A label selector: `matchLabels` and `matchExpressions`, or a plain label map (a Service's).
struct Selector {
    labels: BTreeMap<String, String>,
    expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    fn plain(value: Option<&Value>) -> Self {
        Self {
            labels: string_map(value),
            expressions: Vec::new(),
        }
    }

    fn label_selector(value: Option<&Value>) -> Self {
        let expressions = seq(value.and_then(|value| value.get("matchExpressions")))
            .iter()
            .map(|expression| {
                (
                    str_at(expression, &["key"]).unwrap_or("").to_owned(),
                    str_at(expression, &["operator"]).unwrap_or("").to_owned(),
                    strings(expression.get("values")),
                )
            })
            .collect();
        Self {
            labels: string_map(value.and_then(|value| value.get("matchLabels"))),
            expressions,
        }
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.expressions.iter().all(|(key, operator, values)| {
                let label = labels.get(key);
                match operator.as_str() {
                    "In" => label.is_some_and(|label| values.contains(label)),
                    "NotIn" => label.is_none_or(|label| !values.contains(label)),
                    "Exists" => label.is_some(),
                    "DoesNotExist" => label.is_none(),
                    _ => false,
                }
            })
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.labels)?;
        for (key, operator, values) in &self.expressions {
            write!(f, " {key} {operator} {values:?}")?;
        }
        Ok(())
    }
}

/// The port of a listening address setting, and whether another host can reach it.
fn listen_port(addr: &str) -> Result<u16, String> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|error| format!("{addr:?} is not an address: {error}"))?;
    if addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is loopback: nothing outside the container reaches it"
        ));
    }
    Ok(addr.port())
}

/// `http://host:port` → `(host, port)`.
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.trim().strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// `token` from `BROKER_TOKEN_URL`.
fn service_of_url_setting(name: &str) -> Option<String> {
    Some(
        name.strip_prefix("BROKER_")?
            .strip_suffix("_URL")?
            .to_ascii_lowercase(),
    )
}

// ---------------------------------------------------------------------------------------------
// Kubernetes tests.

#[test]
fn every_brokerd_command_in_the_manifests_and_compose_is_one_brokerd_knows() {
    let commands = brokerd_commands();
    let objects = Objects::load();
    let mut problems = Problems::default();
    for workload in objects.workloads() {
        for container in workload.containers().iter().filter(|c| c.runs_brokerd()) {
            problems.check(!container.args().is_empty(), || {
                format!(
                    "{}: container {} runs brokerd without a command (embedded mode)",
                    workload.at(),
                    container.name
                )
            });
            for arg in container.args() {
                problems.check(commands.contains(&arg), || {
                    format!(
                        "{}: container {} runs `brokerd {arg}`, which `brokerd --help` does not list ({commands:?})",
                        workload.at(),
                        container.name
                    )
                });
            }
        }
    }
    let compose = compose();
    for (name, service) in compose_brokerd_services(&compose) {
        let command = strings(service.get("command"));
        problems.check(!command.is_empty(), || {
            format!("docker-compose.yml: service {name} runs brokerd without a command")
        });
        for arg in command {
            problems.check(commands.contains(&arg), || {
                format!(
                    "docker-compose.yml: service {name} runs `brokerd {arg}`, which `brokerd --help` does not list ({commands:?})"
                )
            });
        }
    }
    problems.assert_none("brokerd commands");
}

#[test]
fn each_service_has_a_deployment_listening_on_the_codes_port() {
    let objects = Objects::load();
    let mut problems = Problems::default();
    for service in services() {
        let deployments: Vec<_> = objects
            .deployments()
            .into_iter()
            .filter(|d| d.brokerd().is_some_and(|(_, runs)| runs == service))
            .collect();
        problems.check(deployments.len() == 1, || {
            format!(
                "deploy/kubernetes: {} Deployments run `brokerd {service}`, not one",
                deployments.len()
            )
        });
    }
    for deployment in objects.deployments() {
        let Some((container, service)) = deployment.brokerd() else {
            problems.add(format!("{}: no container runs {IMAGE}", deployment.at()));
            continue;
        };
        let at = deployment.at();
        // Only a service run alone listens on BROKER_GRPC_ADDR; with two, both take
        // loopback ports nothing outside the pod reaches.
        problems.check(container.args().len() == 1, || {
            format!(
                "{at}: runs `brokerd {}`; a Deployment runs exactly one service",
                container.args().join(" ")
            )
        });
        problems.check(
            deployment.pod_labels().get("app.kubernetes.io/component") == Some(&service),
            || format!("{at}: pods run {service} but are not labelled app.kubernetes.io/component: {service}"),
        );
        let env = container.env(&objects);
        if let Some(expected) = default_grpc_port(&service) {
            let declared = container.port_named("grpc");
            problems.check(declared == Some(u64::from(expected)), || {
                format!("{at}: containerPort `grpc` is {declared:?}; {service}'s gRPC port in the code is {expected}")
            });
            match env.get("BROKER_GRPC_ADDR").cloned().flatten() {
                Some(addr) => match listen_port(&addr) {
                    Ok(port) => problems.check(port == expected, || {
                        format!("{at}: BROKER_GRPC_ADDR={addr}, but {service}'s port is {expected}")
                    }),
                    Err(why) => problems.add(format!("{at}: BROKER_GRPC_ADDR: {why}")),
                },
                None => problems.add(format!(
                    "{at}: BROKER_GRPC_ADDR is unset, so {service} listens on loopback only"
                )),
            }
        } else if service == "gateway" {
            let addr = env.get("BROKER_HTTP_ADDR").cloned().flatten();
            let port = match &addr {
                Some(addr) => listen_port(addr),
                None => Err(format!(
                    "unset, so the gateway listens on {} only",
                    CommonConfig::default().http_addr
                )),
            };
            match port {
                Ok(port) => problems.check(
                    container.port_named("http") == Some(u64::from(port)),
                    || {
                        format!(
                            "{at}: containerPort `http` is {:?}, but BROKER_HTTP_ADDR is {addr:?}",
                            container.port_named("http")
                        )
                    },
                ),
                Err(why) => problems.add(format!("{at}: BROKER_HTTP_ADDR: {why}")),
            }
        } else {
            problems.add(format!(
                "{at}: runs `brokerd {service}`, which is not a service with a listening port"
            ));
        }
        // Metrics: where the process serves them, the declared port and the scrape annotation
        // must all agree.
        let metrics = env.get("BROKER_METRICS_ADDR").cloned().flatten();
        match metrics.as_deref().map(listen_port) {
            Some(Ok(port)) => {
                problems.check(
                    container.port_named("metrics") == Some(u64::from(port)),
                    || format!("{at}: containerPort `metrics` is {:?}, but BROKER_METRICS_ADDR is {metrics:?}", container.port_named("metrics")),
                );
                let annotations = string_map(get(deployment.pod, &["metadata", "annotations"]));
                problems.check(
                    annotations.get("prometheus.io/scrape").map(String::as_str) == Some("true")
                        && annotations.get("prometheus.io/port") == Some(&port.to_string()),
                    || format!("{at}: pods are not annotated prometheus.io/scrape \"true\" and prometheus.io/port \"{port}\": {annotations:?}"),
                );
            }
            Some(Err(why)) => problems.add(format!("{at}: BROKER_METRICS_ADDR: {why}")),
            None => problems.add(format!(
                "{at}: BROKER_METRICS_ADDR is unset, so metrics are on loopback only"
            )),
        }
    }
    problems.assert_none("Deployments and ports");
}

#[test]
fn every_variable_is_a_setting_the_code_reads() {
    let settings = settings();
    let objects = Objects::load();
    let mut problems = Problems::default();
    for kind in ["ConfigMap", "Secret"] {
        for doc in objects.of_kind(kind) {
            for key in objects.data(kind, doc.name()).keys() {
                problems.check(is_read(&settings, key), || {
                    format!("{}: key {key} is no setting the code reads", doc.at())
                });
            }
        }
    }
    for workload in objects.workloads() {
        for container in workload.containers() {
            let at = format!("{}: container {}", workload.at(), container.name);
            for source in seq(container.value.get("envFrom")) {
                for (kind, key) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
                    if let Some(name) = str_at(source, &[key, "name"]) {
                        problems.check(objects.find(kind, name).is_some(), || {
                            format!("{at}: envFrom names {kind} {name:?}, which does not exist")
                        });
                    }
                }
            }
            for variable in seq(container.value.get("env")) {
                let name = str_at(variable, &["name"]).unwrap_or("");
                problems.check(is_read(&settings, name), || {
                    format!("{at}: env {name} is no setting the code reads")
                });
                if variable.get("value").is_none()
                    && let Err(why) = objects.referenced(variable)
                {
                    problems.add(format!("{at}: env {name}: {why}"));
                }
            }
        }
    }
    let compose = compose();
    for (name, service) in compose_brokerd_services(&compose) {
        for key in string_map(service.get("environment")).keys() {
            problems.check(is_read(&settings, key), || {
                format!("docker-compose.yml: service {name}: environment {key} is no setting the code reads")
            });
        }
    }
    for (name, _) in dockerfile().env() {
        problems.check(is_read(&settings, &name), || {
            format!("Dockerfile: ENV {name} is no setting the code reads")
        });
    }
    problems.assert_none("environment variables");
}

#[test]
fn services_probes_and_policies_point_at_ports_that_exist() {
    let objects = Objects::load();
    let mut problems = Problems::default();
    let deployments = objects.deployments();
    for service in objects.of_kind("Service") {
        let at = service.at();
        let selector = Selector::plain(get(&service.value, &["spec", "selector"]));
        let selected = objects.selected(&selector);
        problems.check(!selector.is_empty() && selected.len() == 1, || {
            format!(
                "{at}: selector {selector} selects {} Deployments' pods, not one",
                selected.len()
            )
        });
        for port in seq(get(&service.value, &["spec", "ports"])) {
            let target = port
                .get("targetPort")
                .or_else(|| port.get("port"))
                .and_then(PortRef::of);
            for deployment in &selected {
                let found = target.as_ref().is_some_and(|target| {
                    deployment
                        .containers()
                        .iter()
                        .any(|container| container.has_port(target))
                });
                problems.check(found, || {
                    format!(
                        "{at}: targetPort {} is no containerPort of {}",
                        target
                            .as_ref()
                            .map_or("(none)".to_owned(), ToString::to_string),
                        deployment.at()
                    )
                });
            }
        }
    }
    for deployment in &deployments {
        let at = deployment.at();
        for container in deployment.containers() {
            for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let Some(probe) = container.value.get(kind) else {
                    problems.check(kind == "startupProbe", || {
                        format!("{at}: container {} has no {kind}", container.name)
                    });
                    continue;
                };
                if let Some(http) = probe.get("httpGet") {
                    let port = http.get("port").and_then(PortRef::of);
                    problems.check(
                        port.as_ref().is_some_and(|port| container.has_port(port)),
                        || format!("{at}: {kind} port {port:?} is no containerPort"),
                    );
                    let path = str_at(http, &["path"]).unwrap_or("");
                    problems.check(
                        HEALTH_ROUTES.contains(&format!(".route(\"{path}\"")),
                        || format!("{at}: {kind} GET {path:?} is no route of crates/gateway/src/routes/health.rs"),
                    );
                } else if let Some(grpc) = probe.get("grpc") {
                    // A gRPC probe takes a number; it must be the port gRPC is served on.
                    let port = grpc.get("port").and_then(Value::as_u64);
                    problems.check(
                        port.is_some() && port == container.port_named("grpc"),
                        || format!("{at}: {kind} probes gRPC on {port:?}, but containerPort `grpc` is {:?}", container.port_named("grpc")),
                    );
                } else if let Some(tcp) = probe.get("tcpSocket") {
                    let port = tcp.get("port").and_then(PortRef::of);
                    problems.check(
                        port.as_ref().is_some_and(|port| container.has_port(port)),
                        || format!("{at}: {kind} port {port:?} is no containerPort"),
                    );
                } else {
                    problems.add(format!(
                        "{at}: {kind} is neither httpGet, grpc nor tcpSocket"
                    ));
                }
            }
        }
    }
    for policy in objects.of_kind("NetworkPolicy") {
        let at = policy.at();
        let selector = Selector::label_selector(get(&policy.value, &["spec", "podSelector"]));
        let selected = objects.selected(&selector);
        problems.check(!selected.is_empty(), || {
            format!("{at}: podSelector {selector} selects no Deployment's pods")
        });
        for rule in seq(get(&policy.value, &["spec", "ingress"])) {
            for port in seq(rule.get("ports")) {
                let Some(port) = port.get("port").and_then(PortRef::of) else {
                    continue;
                };
                for deployment in &selected {
                    problems.check(
                        deployment.containers().iter().any(|c| c.has_port(&port)),
                        || {
                            format!(
                                "{at}: port {port} is no containerPort of {}",
                                deployment.at()
                            )
                        },
                    );
                }
            }
        }
    }
    for ingress in objects.of_kind("Ingress") {
        for rule in seq(get(&ingress.value, &["spec", "rules"])) {
            for path in seq(get(rule, &["http", "paths"])) {
                let name = str_at(path, &["backend", "service", "name"]).unwrap_or("");
                let port = get(path, &["backend", "service", "port"]);
                let port_name = port.and_then(|p| p.get("name")).and_then(Value::as_str);
                let port_number = port.and_then(|p| p.get("number")).and_then(Value::as_u64);
                let exists = objects.find("Service", name).is_some_and(|service| {
                    seq(get(&service.value, &["spec", "ports"]))
                        .iter()
                        .any(|p| {
                            (port_name.is_some() && str_at(p, &["name"]) == port_name)
                                || (port_number.is_some()
                                    && get(p, &["port"]).and_then(Value::as_u64) == port_number)
                        })
                });
                problems.check(exists, || {
                    format!(
                        "{}: backend Service {name:?} port {:?} does not exist",
                        ingress.at(),
                        port_name
                            .map(str::to_owned)
                            .or(port_number.map(|n| n.to_string()))
                    )
                });
            }
        }
    }
    problems.assert_none("Services, probes and policies");
}

#[test]
fn service_urls_reach_the_service_they_name() {
    let objects = Objects::load();
    let mut problems = Problems::default();
    for config in objects.of_kind("ConfigMap") {
        let data = objects.data("ConfigMap", config.name());
        for setting in SERVICE_URL_SETTINGS {
            let Some(urls) = data.get(setting.name) else {
                continue;
            };
            let wanted = service_of_url_setting(setting.name).unwrap_or_default();
            for url in urls.split(',') {
                let at = format!("{}: {}={url}", config.at(), setting.name);
                let Some((host, port)) = url_host_port(url) else {
                    problems.add(format!("{at}: not http://host:port"));
                    continue;
                };
                // `token`, `token.broker` or `token.broker.svc…` all name the Service `token`.
                let service_name = host.split('.').next().unwrap_or("");
                let Some(service) = objects.find("Service", service_name) else {
                    problems.add(format!("{at}: no Service {service_name:?}"));
                    continue;
                };
                let selector = Selector::plain(get(&service.value, &["spec", "selector"]));
                let reaches = objects.selected(&selector).iter().any(|deployment| {
                    deployment.brokerd().is_some_and(|(container, runs)| {
                        let target = seq(get(&service.value, &["spec", "ports"]))
                            .iter()
                            .find(|p| {
                                get(p, &["port"]).and_then(Value::as_u64) == Some(u64::from(port))
                            })
                            .and_then(|p| p.get("targetPort").or_else(|| p.get("port")))
                            .and_then(PortRef::of);
                        runs == wanted
                            && target.is_some_and(|target| {
                                container.has_port(&target)
                                    && container.port_named("grpc").is_some_and(|grpc| {
                                        target == PortRef::Name("grpc".to_owned())
                                            || target == PortRef::Number(grpc)
                                    })
                            })
                    })
                });
                problems.check(reaches, || {
                    format!("{at}: Service {service_name} port {port} does not lead to the gRPC port of `brokerd {wanted}`")
                });
            }
        }
    }
    let compose = compose();
    let brokerd_services = compose_brokerd_services(&compose);
    for (name, service) in &brokerd_services {
        let env = string_map(service.get("environment"));
        for setting in SERVICE_URL_SETTINGS {
            let Some(urls) = env.get(setting.name) else {
                continue;
            };
            let wanted = service_of_url_setting(setting.name).unwrap_or_default();
            for url in urls.split(',') {
                let at = format!("docker-compose.yml: service {name}: {}={url}", setting.name);
                let Some((host, port)) = url_host_port(url) else {
                    problems.add(format!("{at}: not http://host:port"));
                    continue;
                };
                let target = brokerd_services.iter().find(|(other, _)| *other == host);
                let reaches = target.is_some_and(|(_, target)| {
                    let command = strings(target.get("command"));
                    let grpc = string_map(target.get("environment"))
                        .get("BROKER_GRPC_ADDR")
                        .and_then(|addr| listen_port(addr).ok());
                    command == [wanted.clone()] && grpc == Some(port)
                });
                problems.check(reaches, || {
                    format!("{at}: {host}:{port} is not a service running `brokerd {wanted}` with BROKER_GRPC_ADDR on port {port}")
                });
            }
        }
        let command = strings(service.get("command"));
        let env_port = env.get("BROKER_GRPC_ADDR").map(|addr| listen_port(addr));
        if let [only] = command.as_slice()
            && let Some(expected) = default_grpc_port(only)
        {
            problems.check(env_port == Some(Ok(expected)), || {
                format!("docker-compose.yml: service {name}: BROKER_GRPC_ADDR is {:?}; {only}'s port in the code is {expected}", env.get("BROKER_GRPC_ADDR"))
            });
        }
        if let [only] = command.as_slice()
            && only == "gateway"
        {
            let port = env.get("BROKER_HTTP_ADDR").map(|addr| listen_port(addr));
            let published = strings(service.get("ports"));
            let exposed = port.as_ref().is_some_and(|port| {
                port.as_ref().is_ok_and(|port| {
                    published
                        .iter()
                        .any(|mapping| mapping.ends_with(&format!(":{port}")))
                })
            });
            problems.check(exposed, || {
                format!("docker-compose.yml: service {name}: BROKER_HTTP_ADDR {:?} is not the container side of a published port {published:?}", env.get("BROKER_HTTP_ADDR"))
            });
        }
    }
    problems.assert_none("service URLs");
}

#[test]
fn every_deployment_scales_and_survives_disruption() {
    let objects = Objects::load();
    let mut problems = Problems::default();
    let deployments = objects.deployments();
    let mut scaled = BTreeMap::new();
    for hpa in objects.of_kind("HorizontalPodAutoscaler") {
        let at = hpa.at();
        problems.check(
            str_at(&hpa.value, &["apiVersion"]) == Some("autoscaling/v2"),
            || format!("{at}: not autoscaling/v2"),
        );
        let kind = str_at(&hpa.value, &["spec", "scaleTargetRef", "kind"]).unwrap_or("");
        let name = str_at(&hpa.value, &["spec", "scaleTargetRef", "name"]).unwrap_or("");
        let min = get(&hpa.value, &["spec", "minReplicas"])
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let max = get(&hpa.value, &["spec", "maxReplicas"])
            .and_then(Value::as_u64)
            .unwrap_or(0);
        problems.check(min >= 1 && max >= min, || {
            format!("{at}: minReplicas {min}, maxReplicas {max}")
        });
        let Some(target) = deployments
            .iter()
            .find(|d| kind == "Deployment" && d.doc.name() == name)
        else {
            problems.add(format!(
                "{at}: targets {kind} {name:?}, which does not exist"
            ));
            continue;
        };
        if scaled.insert(name.to_owned(), min).is_some() {
            problems.add(format!("{at}: a second autoscaler for Deployment {name}"));
        }
        // The autoscaler owns the count; a `replicas` in the Deployment would reset it on
        // every apply.
        problems.check(
            get(&target.doc.value, &["spec", "replicas"]).is_none(),
            || {
                format!(
                    "{}: sets spec.replicas although {at} scales it",
                    target.at()
                )
            },
        );
        // Utilization is measured against requests: a container without one is not scaled.
        let uses_cpu = seq(get(&hpa.value, &["spec", "metrics"]))
            .iter()
            .any(|m| str_at(m, &["resource", "name"]) == Some("cpu"));
        problems.check(uses_cpu, || format!("{at}: does not scale on CPU"));
        for container in target.containers() {
            problems.check(
                get(container.value, &["resources", "requests", "cpu"]).is_some(),
                || {
                    format!(
                        "{}: container {} requests no CPU, so {at} cannot measure it",
                        target.at(),
                        container.name
                    )
                },
            );
        }
    }
    let mut budgeted = BTreeSet::new();
    for pdb in objects.of_kind("PodDisruptionBudget") {
        let at = pdb.at();
        let selector = Selector::label_selector(get(&pdb.value, &["spec", "selector"]));
        let selected = objects.selected(&selector);
        problems.check(!selector.is_empty() && selected.len() == 1, || {
            format!(
                "{at}: selector {selector} selects {} Deployments' pods, not one",
                selected.len()
            )
        });
        for deployment in &selected {
            let name = deployment.doc.name().to_owned();
            budgeted.insert(name.clone());
            // A budget that keeps as many pods as the autoscaler may leave blocks every drain.
            if let Some(min_available) =
                get(&pdb.value, &["spec", "minAvailable"]).and_then(Value::as_u64)
            {
                let replicas = scaled.get(&name).copied().unwrap_or(1);
                problems.check(min_available < replicas, || {
                    format!("{at}: minAvailable {min_available} with at least {replicas} replicas of {name} blocks node drains")
                });
            }
        }
    }
    for deployment in &deployments {
        let name = deployment.doc.name();
        problems.check(scaled.contains_key(name), || {
            format!("{}: no HorizontalPodAutoscaler targets it", deployment.at())
        });
        problems.check(budgeted.contains(name), || {
            format!(
                "{}: no PodDisruptionBudget selects its pods",
                deployment.at()
            )
        });
    }
    for service in ["filetransfer", "events"] {
        if let Some(deployment) = objects.deployment_of(service) {
            let min = scaled.get(deployment.doc.name()).copied().unwrap_or(0);
            problems.check(min >= 2, || {
                format!("{}: {service} scales down to {min} replica(s); it runs jobs and consumers that must survive one pod", deployment.at())
            });
        }
    }
    problems.assert_none("autoscalers and disruption budgets");
}

#[test]
fn pods_run_locked_down_and_write_only_to_their_volumes() {
    let objects = Objects::load();
    let image_user = dockerfile().runtime_uid();
    let mut problems = Problems::default();
    for workload in objects.workloads() {
        let at = workload.at();
        let spec = workload.pod_spec();
        let pod_security = spec.and_then(|spec| spec.get("securityContext"));
        let mounts_of = |container: &Container| -> Vec<String> {
            seq(container.value.get("volumeMounts"))
                .iter()
                .filter_map(|m| str_at(m, &["mountPath"]).map(str::to_owned))
                .collect()
        };
        if workload.doc.kind() == "Deployment" {
            problems.check(
                get(
                    spec.unwrap_or(&Value::Null),
                    &["terminationGracePeriodSeconds"],
                )
                .is_some(),
                || format!("{at}: no terminationGracePeriodSeconds"),
            );
        }
        if let (Some(uid), Some(run_as)) = (
            image_user,
            pod_security
                .and_then(|s| s.get("runAsUser"))
                .and_then(Value::as_u64),
        ) {
            problems.check(run_as == uid, || {
                format!("{at}: runAsUser {run_as}, but the image's user is {uid}")
            });
        }
        for container in workload.containers() {
            let at = format!("{at}: container {}", container.name);
            let security = container.value.get("securityContext");
            let flag = |key: &str| {
                security
                    .and_then(|s| s.get(key))
                    .or_else(|| pod_security.and_then(|s| s.get(key)))
                    .and_then(Value::as_bool)
            };
            problems.check(flag("runAsNonRoot") == Some(true), || {
                format!("{at}: runAsNonRoot is not true")
            });
            problems.check(
                security
                    .and_then(|s| s.get("readOnlyRootFilesystem"))
                    .and_then(Value::as_bool)
                    == Some(true),
                || format!("{at}: the root filesystem is not read-only"),
            );
            problems.check(
                security
                    .and_then(|s| s.get("allowPrivilegeEscalation"))
                    .and_then(Value::as_bool)
                    == Some(false),
                || format!("{at}: allowPrivilegeEscalation is not false"),
            );
            let dropped = strings(security.and_then(|s| get(s, &["capabilities", "drop"])));
            problems.check(dropped.iter().any(|c| c == "ALL"), || {
                format!("{at}: capabilities drop {dropped:?}, not ALL")
            });
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    problems.check(
                        get(container.value, &["resources", kind, resource]).is_some(),
                        || format!("{at}: no resources.{kind}.{resource}"),
                    );
                }
            }
            // With a read-only root, every place the process writes must be a volume.
            let mounts = mounts_of(&container);
            let writable = |path: &str| {
                mounts
                    .iter()
                    .any(|mount| Path::new(path).starts_with(Path::new(mount)))
            };
            problems.check(writable("/tmp"), || {
                format!("{at}: /tmp is not a volume on a read-only root")
            });
            if container.runs_brokerd() {
                let data_dir = container
                    .env(&objects)
                    .get("BROKER_DATA_DIR")
                    .cloned()
                    .flatten();
                match data_dir {
                    Some(dir) => problems.check(writable(&dir), || {
                        format!("{at}: BROKER_DATA_DIR {dir} is not on a volume ({mounts:?})")
                    }),
                    None => problems.add(format!(
                        "{at}: BROKER_DATA_DIR is unset, so the data directory is on the read-only root"
                    )),
                }
            }
        }
    }
    problems.assert_none("pod security");
}

#[test]
fn migrations_run_as_a_job_before_the_services() {
    let objects = Objects::load();
    let mut problems = Problems::default();
    let jobs: Vec<_> = objects
        .workloads()
        .into_iter()
        .filter(|w| w.doc.kind() == "Job")
        .collect();
    let migrating: Vec<_> = jobs
        .iter()
        .filter(|job| {
            job.brokerd()
                .is_some_and(|(_, command)| command == "migrate")
        })
        .collect();
    problems.check(migrating.len() == 1, || {
        format!(
            "deploy/kubernetes: {} Jobs run `brokerd migrate`, not one",
            migrating.len()
        )
    });
    for job in migrating {
        let (container, _) = job.brokerd().expect("filtered on it");
        problems.check(
            container
                .env(&objects)
                .get("BROKER_DATABASE_URL")
                .is_some_and(Option::is_some),
            || format!("{}: migrate gets no BROKER_DATABASE_URL", job.at()),
        );
    }
    let compose = compose();
    let services = compose_brokerd_services(&compose);
    let migrate: Vec<_> = services
        .iter()
        .filter(|(_, service)| {
            strings(service.get("command")).first().map(String::as_str) == Some("migrate")
        })
        .map(|(name, _)| name.clone())
        .collect();
    problems.check(migrate.len() == 1, || {
        format!(
            "docker-compose.yml: {} services run `brokerd migrate`, not one",
            migrate.len()
        )
    });
    if let [migrate] = migrate.as_slice() {
        for (name, service) in &services {
            let command = strings(service.get("command"));
            let needs_database = command
                .first()
                .is_some_and(|command| default_grpc_port(command).is_some());
            if !needs_database {
                continue;
            }
            let condition = str_at(service, &["depends_on", migrate.as_str(), "condition"]);
            problems.check(condition == Some("service_completed_successfully"), || {
                format!("docker-compose.yml: service {name} does not wait for {migrate} to complete (condition {condition:?})")
            });
        }
    }
    problems.assert_none("migrations");
}

#[test]
fn the_kustomization_lists_every_manifest_in_one_namespace() {
    let dir = kubernetes_dir();
    let text = std::fs::read_to_string(dir.join("kustomization.yaml"))
        .expect("deploy/kubernetes/kustomization.yaml exists");
    let kustomization: Value = serde_norway::from_str(&text).expect("kustomization.yaml is YAML");
    let listed: BTreeSet<String> = strings(kustomization.get("resources"))
        .into_iter()
        .collect();
    let files: BTreeSet<String> = kubernetes_files()
        .iter()
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
        .filter(|name| name != "kustomization.yaml")
        .collect();
    let mut problems = Problems::default();
    for missing in files.difference(&listed) {
        problems.add(format!(
            "deploy/kubernetes/kustomization.yaml: resources do not list {missing}"
        ));
    }
    for stale in listed.difference(&files) {
        problems.add(format!(
            "deploy/kubernetes/kustomization.yaml: resources list {stale}, which is not there"
        ));
    }
    let images = seq(kustomization.get("images"));
    problems.check(
        images
            .iter()
            .any(|image| str_at(image, &["name"]) == Some(IMAGE)),
        || format!("deploy/kubernetes/kustomization.yaml: images does not set the tag of {IMAGE}"),
    );
    let namespace = str_at(&kustomization, &["namespace"]);
    let objects = Objects::load();
    let declared: Vec<&str> = objects.of_kind("Namespace").map(Doc::name).collect();
    problems.check(
        namespace.is_some_and(|namespace| declared.contains(&namespace)),
        || format!("deploy/kubernetes/kustomization.yaml: namespace {namespace:?} is not the Namespace declared ({declared:?})"),
    );
    for doc in objects.docs.iter().filter(|doc| doc.kind() != "Namespace") {
        problems.check(doc.namespace() == namespace, || {
            format!(
                "{}: namespace {:?}, not {namespace:?}",
                doc.at(),
                doc.namespace()
            )
        });
    }
    for workload in objects.workloads() {
        for container in workload.containers() {
            problems.check(container.runs_brokerd(), || {
                format!(
                    "{}: container {} runs {:?}, not {IMAGE}",
                    workload.at(),
                    container.name,
                    container.image()
                )
            });
        }
    }
    problems.assert_none("kustomization");
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml.

/// The Compose services built from the Dockerfile, whose entry point is `brokerd`.
fn compose_brokerd_services(compose: &Value) -> Vec<(String, &Value)> {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter(|(_, service)| service.get("build").is_some())
        .filter_map(|(name, service)| Some((name.as_str()?.to_owned(), service)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile.

/// One instruction: `RUN …`, with continuation lines joined.
struct Instruction {
    keyword: String,
    arguments: String,
}

struct Dockerfile {
    instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// The instructions of each stage, from its `FROM` on.
    fn stages(&self) -> Vec<&[Instruction]> {
        let starts: Vec<usize> = self
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.keyword == "FROM")
            .map(|(index, _)| index)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                let end = starts
                    .get(n + 1)
                    .copied()
                    .unwrap_or(self.instructions.len());
                &self.instructions[start..end]
            })
            .collect()
    }

    /// `ENV` names and values of the final image.
    fn env(&self) -> Vec<(String, String)> {
        let stages = self.stages();
        let Some(runtime) = stages.last() else {
            return Vec::new();
        };
        runtime
            .iter()
            .filter(|i| i.keyword == "ENV")
            .flat_map(|i| i.arguments.split_whitespace())
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    /// The user the final image runs as (`USER broker` or `USER 10001:10001` → its user part).
    fn runtime_user(&self) -> Option<String> {
        let stages = self.stages();
        stages
            .last()?
            .iter()
            .rev()
            .find(|i| i.keyword == "USER")
            .map(|i| {
                i.arguments
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
    }

    fn runtime_uid(&self) -> Option<u64> {
        self.runtime_user()?.parse().ok()
    }
}

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("reading the Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, arguments) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    arguments: arguments.trim().to_owned(),
                });
                current.clear();
            }
        }
    }
    Dockerfile { instructions }
}

/// The workspace's manifest and each member package's.
fn workspace() -> (toml::Value, Vec<(PathBuf, toml::Value)>) {
    let read = |path: &Path| -> toml::Value {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    };
    let root = root();
    let manifest = read(&root.join("Cargo.toml"));
    let mut members = Vec::new();
    let patterns = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for pattern in patterns.iter().filter_map(toml::Value::as_str) {
        let dirs: Vec<PathBuf> = match pattern.strip_suffix("/*") {
            Some(parent) => std::fs::read_dir(root.join(parent))
                .expect("reading a members directory")
                .map(|entry| entry.expect("a directory entry").path())
                .collect(),
            None => vec![root.join(pattern)],
        };
        for dir in dirs {
            if dir.join("Cargo.toml").is_file() {
                let package = read(&dir.join("Cargo.toml"));
                members.push((dir, package));
            }
        }
    }
    (manifest, members)
}

/// Every binary the workspace builds: `[[bin]]` targets and packages with `src/main.rs`.
fn workspace_binaries() -> BTreeSet<String> {
    let (_, members) = workspace();
    let mut binaries = BTreeSet::new();
    for (dir, package) in members {
        let explicit = package
            .get("bin")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        for bin in &explicit {
            if let Some(name) = bin.get("name").and_then(toml::Value::as_str) {
                binaries.insert(name.to_owned());
            }
        }
        let main_is_explicit = explicit
            .iter()
            .any(|bin| bin.get("path").and_then(toml::Value::as_str) == Some("src/main.rs"));
        if !main_is_explicit
            && dir.join("src/main.rs").is_file()
            && let Some(name) = package
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(toml::Value::as_str)
        {
            binaries.insert(name.to_owned());
        }
    }
    binaries
}

#[test]
fn the_dockerfile_builds_and_ships_the_workspace_binaries() {
    let dockerfile = dockerfile();
    let stages = dockerfile.stages();
    let mut problems = Problems::default();
    problems.check(stages.len() >= 2, || {
        format!("Dockerfile: {} FROM, not a multi-stage build", stages.len())
    });
    let (manifest, _) = workspace();
    let rust_version = manifest
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(toml::Value::as_str)
        .expect("the workspace sets rust-version")
        .to_owned();
    let builders: Vec<&[Instruction]> = stages
        .iter()
        .copied()
        .filter(|stage| stage[0].arguments.starts_with("rust:"))
        .collect();
    problems.check(!builders.is_empty(), || {
        "Dockerfile: no stage builds FROM rust:<version>".to_owned()
    });
    for builder in &builders {
        let image = builder[0].arguments.split_whitespace().next().unwrap_or("");
        let tag_version = image
            .strip_prefix("rust:")
            .and_then(|tag| tag.split('-').next())
            .unwrap_or("");
        problems.check(
            tag_version == rust_version || tag_version.starts_with(&format!("{rust_version}.")),
            || {
                format!(
                    "Dockerfile: FROM {image}, but the workspace's rust-version is {rust_version}"
                )
            },
        );
    }
    let builds_locked = builders.iter().flat_map(|stage| stage.iter()).any(|i| {
        i.keyword == "RUN"
            && i.arguments.contains("cargo build")
            && i.arguments.contains("--locked")
    });
    problems.check(builds_locked, || {
        "Dockerfile: no RUN cargo build … --locked in a rust stage".to_owned()
    });
    let Some(runtime) = stages.last() else {
        problems.assert_none("Dockerfile");
        return;
    };
    problems.check(!runtime[0].arguments.starts_with("rust:"), || {
        format!(
            "Dockerfile: the final stage is FROM {}, the whole toolchain",
            runtime[0].arguments
        )
    });
    match dockerfile.runtime_user() {
        Some(user) => problems.check(user != "root" && user != "0" && !user.is_empty(), || {
            format!("Dockerfile: the final stage runs as USER {user}")
        }),
        None => problems.add("Dockerfile: the final stage sets no USER, so it runs as root"),
    }
    let binaries = workspace_binaries();
    let mut shipped = BTreeSet::new();
    for copy in runtime.iter().filter(|i| i.keyword == "COPY") {
        let words: Vec<&str> = copy.arguments.split_whitespace().collect();
        if !words.first().is_some_and(|w| w.starts_with("--from=")) {
            continue;
        }
        let sources = &words[1..words.len().saturating_sub(1)];
        for source in sources {
            let name = Path::new(source)
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            problems.check(binaries.contains(name), || {
                format!(
                    "Dockerfile: COPY {source}: {name} is no binary of the workspace ({binaries:?})"
                )
            });
            shipped.insert(name.to_owned());
        }
    }
    for wanted in ["brokerd", "broker"] {
        problems.check(shipped.contains(wanted), || {
            format!("Dockerfile: the final stage does not ship {wanted} (ships {shipped:?})")
        });
    }
    let entrypoint = runtime
        .iter()
        .rev()
        .find(|i| i.keyword == "ENTRYPOINT")
        .and_then(|i| serde_json::from_str::<Vec<String>>(&i.arguments).ok())
        .unwrap_or_default();
    let program = entrypoint
        .first()
        .and_then(|p| Path::new(p).file_name())
        .and_then(|name| name.to_str())
        .unwrap_or("");
    problems.check(program == "brokerd" && shipped.contains(program), || {
        format!("Dockerfile: ENTRYPOINT {entrypoint:?} is not the shipped brokerd in exec form")
    });
    // Every port a process of this image listens on by default or by the image's settings.
    let exposed: BTreeSet<u16> = runtime
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| i.arguments.split_whitespace())
        .filter_map(|port| port.split('/').next()?.parse().ok())
        .collect();
    let mut listening: BTreeSet<u16> = services()
        .into_iter()
        .filter_map(default_grpc_port)
        .collect();
    for (name, value) in dockerfile.env() {
        if name.ends_with("_ADDR")
            && let Ok(addr) = value.parse::<SocketAddr>()
        {
            listening.insert(addr.port());
        }
    }
    for port in listening.difference(&exposed) {
        problems.add(format!(
            "Dockerfile: port {port} is listened on but not in EXPOSE {exposed:?}"
        ));
    }
    problems.assert_none("Dockerfile");
}

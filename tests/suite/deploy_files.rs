//! The deploy files, checked offline: the Dockerfile builds with the install script and runs as a non-root user
//! with a health check; the Kubernetes manifests parse, probe the right endpoints, request the resources the
//! benchmark measured, and the Job's job file is a valid broadcast request.

use serde_norway::Value;
use std::path::Path;

fn deploy(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)).expect(path)
}

fn documents(path: &str) -> Vec<Value> {
    let text = deploy(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn dockerfile_builds_with_the_install_script_and_runs_unprivileged() {
    let dockerfile = deploy("Dockerfile");
    let froms: Vec<&str> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(froms[1].contains("debian:12"), "{froms:?}");
    assert!(dockerfile.contains("install-deps.sh --build") && dockerfile.contains("install-deps.sh --runtime"));
    let user = dockerfile.lines().rfind(|l| l.starts_with("USER ")).expect("USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(dockerfile
        .lines()
        .any(|l| l.starts_with("HEALTHCHECK") && l.contains("/healthz")));
    assert!(dockerfile.contains("ENTRYPOINT [\"callcast\"]"));
}

#[test]
fn kubernetes_server_is_probed_and_sized() {
    let docs = documents("kubernetes/server.yaml");
    let deployment = of_kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    assert!(container["image"].as_str().is_some_and(|i| i.starts_with("callcast:")));
    assert_eq!(container["args"][0].as_str(), Some("serve"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert!(container["resources"]["requests"]["cpu"].as_str().is_some());
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["key"].as_str(),
        Some("api-token"),
        "the token comes from a Secret"
    );
    let service = of_kind(&docs, "Service");
    assert_eq!(service["spec"]["selector"]["app"].as_str(), Some("callcast"));
}

#[test]
fn kubernetes_job_runs_a_valid_broadcast() {
    let docs = documents("kubernetes/job.yaml");
    let job = of_kind(&docs, "Job");
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"][0].as_str(), Some("run"));
    assert!(container["resources"]["requests"]["cpu"].as_str().is_some());
    let job_file = of_kind(&docs, "ConfigMap")["data"]["job.json"]
        .as_str()
        .expect("job.json");
    let request: callcast::broadcast::request::BroadcastRequest =
        serde_json::from_str(job_file).expect("the job file is a POST /v1/broadcasts body");
    callcast::broadcast::spec::BroadcastSpec::from_request(request, &callcast::layout::template::Templates::builtin())
        .expect("and a valid one");
}

#[test]
fn helm_chart_metadata_and_values_parse() {
    let chart = documents("helm/callcast/Chart.yaml");
    assert_eq!(chart[0]["name"].as_str(), Some("callcast"));
    let values = documents("helm/callcast/values.yaml");
    assert!(values[0]["resources"]["requests"]["cpu"].as_str().is_some());
}

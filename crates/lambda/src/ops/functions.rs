//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
//! UpdateFunctionConfiguration, DeleteFunction; and the `FunctionConfiguration` shape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};
use sluice_aws::validate::Validator;
use sluice_aws::ApiError;

use super::{last_modified, lookup, Json};
use crate::error::{self, from_store, invalid_content, invalid_parameter, too_large, Failure};
use crate::limits;
use crate::names::{FunctionRef, LATEST};
use crate::package;
use crate::service::{json_ok, Call, Lambda};
use crate::store::{new_revision_id, Function, FunctionRecord};

type Answer = Result<axum::response::Response, Failure>;

/// The `Runtime` enum of the API model.
pub const RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "java8.al2",
    "java11",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
    "provided.al2",
    "nodejs18.x",
    "python3.10",
    "java17",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "python3.11",
    "nodejs20.x",
    "provided.al2023",
    "python3.12",
    "java21",
    "python3.13",
    "nodejs22.x",
    "nodejs24.x",
    "python3.14",
    "java25",
    "dotnet10",
    "ruby4.0",
];

const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];
const ROLE_PATTERN: &str = "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+";

/// Environment variables Lambda sets itself; a function may not set them.
const RESERVED_VARIABLES: &[&str] = sluice_runtime::RESERVED_ENVIRONMENT_KEYS;

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !(partition.is_empty()
        || (partition.starts_with("aws")
            && partition[3..]
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-')))
    {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    if rest.len() < 12 || !rest.as_bytes()[..12].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Some(path) = rest[12..].strip_prefix(":role") else {
        return false;
    };
    !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b))
}

/// Checks a function's variables as Lambda does: names, reserved names, 4 KB in all.
pub fn check_environment(vars: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut v = Validator::new();
    for k in vars.keys() {
        let ok = k.len() >= 2
            && k.as_bytes()[0].is_ascii_alphabetic()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            v.fail(
                Some(k),
                "environment.variables",
                "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
            );
        }
    }
    v.finish()?;
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_VARIABLES.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let measured = serde_json::to_string(vars).unwrap_or_default();
    if measured.len() > limits::ENVIRONMENT_BYTES_MAX {
        return Err(invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {measured}"
        )));
    }
    Ok(())
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    super::check_tags(tags, limits::TAGS_PER_FUNCTION_MAX, "function")
}

/// The members CreateFunction and UpdateFunctionConfiguration share, checked.
#[derive(Debug, Default)]
struct Settings {
    role: Option<String>,
    runtime: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout_s: Option<u32>,
    memory_mb: Option<u32>,
    environment: Option<BTreeMap<String, String>>,
}

/// Reads and checks the shared members into `v` (model constraints); returns them.
fn read_settings(body: &Json, v: &mut Validator) -> Result<Settings, ApiError> {
    let role = body.str("Role")?;
    v.pattern(role, "role", ROLE_PATTERN, is_role_arn);
    let runtime = body.str("Runtime")?;
    v.one_of(runtime, "runtime", RUNTIMES);
    let handler = body.str("Handler")?;
    v.str_len(handler, "handler", 0, limits::HANDLER_CHARS_MAX);
    v.pattern(handler, "handler", "[^\\s]+", |s| {
        !s.is_empty() && !s.chars().any(char::is_whitespace)
    });
    let description = body.str("Description")?;
    v.str_len(description, "description", 0, limits::DESCRIPTION_CHARS_MAX);
    let timeout = body.int("Timeout")?;
    v.range(
        timeout,
        "timeout",
        Some(limits::TIMEOUT_S_MIN),
        Some(limits::TIMEOUT_S_MAX),
    );
    let memory = body.int("MemorySize")?;
    v.range(
        memory,
        "memorySize",
        Some(limits::MEMORY_MB_MIN),
        Some(limits::MEMORY_MB_MAX),
    );
    let environment = match body.object("Environment")? {
        Some(e) => Some(e.string_map("Variables")?.unwrap_or_default()),
        None => None,
    };
    Ok(Settings {
        role: role.map(str::to_string),
        runtime: runtime.map(str::to_string),
        handler: handler.map(str::to_string),
        description: description.map(str::to_string),
        timeout_s: timeout.and_then(|t| u32::try_from(t).ok()),
        memory_mb: memory.and_then(|m| u32::try_from(m).ok()),
        environment,
    })
}

/// Members sluice does not act on and refuses rather than ignore, because ignoring them
/// would change what the function does.
fn refuse_unsupported(body: &Json) -> Result<(), ApiError> {
    if body.string_list("Layers")?.is_some_and(|l| !l.is_empty()) {
        return Err(invalid_parameter(
            "sluice does not support Layers yet: put the layer's contents in the deployment package.",
        ));
    }
    Ok(())
}

fn read_architecture(body: &Json, v: &mut Validator) -> Result<Option<String>, ApiError> {
    let Some(list) = body.string_list("Architectures")? else {
        return Ok(None);
    };
    v.count(list.len(), "architectures", 1, 1, || {
        format!("[{}]", list.join(", "))
    });
    for a in &list {
        v.one_of(Some(a), "architectures", ARCHITECTURES);
    }
    Ok(list.into_iter().next())
}

/// The zip of a `Code` structure or of UpdateFunctionCode's body.
fn read_zip(code: &Json, operation: &str) -> Result<Vec<u8>, ApiError> {
    if code.has("ImageUri") {
        return Err(invalid_parameter(
            "sluice does not support container images (ImageUri) yet: use a .zip deployment package (ZipFile).",
        ));
    }
    let zip = code.str("ZipFile")?;
    if zip.is_none() && (code.has("S3Bucket") || code.has("S3Key")) {
        return Err(invalid_parameter(
            "sluice does not support code from S3 (S3Bucket, S3Key) yet: pass the package as ZipFile.",
        ));
    }
    let Some(zip) = zip else {
        return Err(invalid_parameter(
            "Please provide a source for function code.",
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(zip.trim())
        .map_err(|e| {
            invalid_content(format!(
                "Could not parse request body into json: ZipFile is not base64: {e}"
            ))
        })?;
    if bytes.len() > limits::ZIP_FILE_BYTES_MAX {
        return Err(too_large(limits::CODE_REQUEST_BYTES_MAX, operation));
    }
    package::check(&bytes).map_err(error::from_package)?;
    Ok(bytes)
}

pub(crate) async fn create(lambda: &Arc<Lambda>, call: Call<'_>) -> Answer {
    if call.body.len() > limits::CODE_REQUEST_BYTES_MAX {
        return Err(too_large(limits::CODE_REQUEST_BYTES_MAX, "CreateFunction").into());
    }
    let body = Json::parse(&call.body)?;
    let mut v = Validator::new();
    let name = body.str("FunctionName")?;
    v.required(name, "functionName");
    let parsed = name.map(|n| {
        FunctionRef::parse(
            n,
            "functionName",
            limits::FUNCTION_NAME_MEMBER_CHARS_MAX,
            crate::names::FUNCTION_NAME_PATTERN,
        )
    });
    v.required(body.str("Role")?, "role");
    let settings = read_settings(&body, &mut v)?;
    v.required(body.object("Code")?, "code");
    let package_type = body.str("PackageType")?;
    v.one_of(package_type, "packageType", &["Zip", "Image"]);
    let architecture = read_architecture(&body, &mut v)?;
    // The name's own errors first, as they come first among the members.
    let function = match parsed {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    v.finish()?;
    let Some(function) = function else {
        return Err(ApiError::validation("FunctionName").into());
    };
    if package_type == Some("Image") {
        return Err(invalid_parameter(
            "sluice does not support PackageType Image (container images) yet: use a .zip deployment package.",
        )
        .into());
    }
    let (Some(runtime), Some(handler)) = (settings.runtime.clone(), settings.handler.clone())
    else {
        return Err(invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        )
        .into());
    };
    refuse_unsupported(&body)?;
    let environment = settings.environment.clone().unwrap_or_default();
    check_environment(&environment)?;
    let tags = body.string_map("Tags")?.unwrap_or_default();
    check_tags(&tags)?;
    if body.bool("Publish")? == Some(true) {
        // Versions are not kept: the function is created as $LATEST only.
        tracing::info!(function = %function.name, "CreateFunction: Publish is ignored (sluice keeps $LATEST only)");
    }
    let code = body.object("Code")?.unwrap_or_default();
    let zip = read_zip(&code, "CreateFunction")?;
    let now = (lambda.now_ms)();
    let record = FunctionRecord {
        format_version: 0,
        name: function.name.to_string(),
        runtime,
        role: settings.role.unwrap_or_default(),
        handler,
        description: settings.description.unwrap_or_default(),
        timeout_s: settings.timeout_s.unwrap_or(limits::TIMEOUT_S_DEFAULT),
        memory_mb: settings.memory_mb.unwrap_or(limits::MEMORY_MB_DEFAULT),
        environment,
        architecture: architecture.unwrap_or_else(|| "x86_64".into()),
        tags,
        code_sha256: String::new(),
        code_size: 0,
        code_revision: String::new(),
        last_modified_ms: now,
        revision_id: new_revision_id(),
        reserved_concurrency: None,
    };
    let arn = lambda.scope.arn(&function.name);
    let _writer = lambda.store.lock().await;
    let f = sluice_aws::blocking(|| lambda.store.create(record, &zip))
        .map_err(|e| from_store(e, &arn))?;
    Ok(json_ok(
        StatusCode::CREATED,
        &configuration(lambda, &f, true),
        call.request_id,
    ))
}

pub(crate) async fn get(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = lookup(lambda, raw, call.query("Qualifier"))?;
    let mut out = json!({
        "Configuration": configuration(lambda, &f, false),
        "Code": {"RepositoryType": "S3", "Location": ""},
    });
    if !f.record.tags.is_empty() {
        out["Tags"] = json!(f.record.tags);
    }
    if let Some(n) = f.record.reserved_concurrency {
        out["Concurrency"] = json!({"ReservedConcurrentExecutions": n});
    }
    Ok(json_ok(StatusCode::OK, &out, call.request_id))
}

pub(crate) async fn get_configuration(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = lookup(lambda, raw, call.query("Qualifier"))?;
    Ok(json_ok(
        StatusCode::OK,
        &configuration(lambda, &f, false),
        call.request_id,
    ))
}

pub(crate) async fn list(lambda: &Arc<Lambda>, call: Call<'_>) -> Answer {
    let mut v = Validator::new();
    let max_items = super::max_items(&call, &mut v)?;
    v.one_of(call.query("FunctionVersion"), "functionVersion", &["ALL"]);
    v.finish()?;
    let page = max_items
        .map(|n| n as usize)
        .unwrap_or(limits::LIST_PAGE_MAX)
        .min(limits::LIST_PAGE_MAX);
    let after = super::marker(&call)?;
    let all = lambda.store.list();
    let rest: Vec<_> = all
        .iter()
        .filter(|f| after.as_deref().is_none_or(|a| f.name.as_str() > a))
        .collect();
    let shown: Vec<Value> = rest
        .iter()
        .take(page)
        .map(|f| configuration(lambda, f, false))
        .collect();
    let mut out = json!({ "Functions": shown });
    if rest.len() > page {
        if let Some(last) = rest.get(page - 1) {
            out["NextMarker"] = json!(super::next_marker(last.name.as_str()));
        }
    }
    Ok(json_ok(StatusCode::OK, &out, call.request_id))
}

fn check_revision(body: &Json, f: &Function) -> Result<(), ApiError> {
    match body.str("RevisionId")? {
        Some(r) if r != f.record.revision_id => Err(error::revision_mismatch()),
        _ => Ok(()),
    }
}

fn reject_declared(f: &Function, arn: &str) -> Result<(), ApiError> {
    if f.declared {
        return Err(from_store(
            crate::store::StoreError::Declared(f.name.clone()),
            arn,
        ));
    }
    Ok(())
}

pub(crate) async fn update_configuration(
    lambda: &Arc<Lambda>,
    call: Call<'_>,
    raw: &str,
) -> Answer {
    let body = Json::parse(&call.body)?;
    let found = lookup(lambda, raw, None)?;
    let mut v = Validator::new();
    let settings = read_settings(&body, &mut v)?;
    v.finish()?;
    refuse_unsupported(&body)?;
    if let Some(env) = &settings.environment {
        check_environment(env)?;
    }
    let arn = lambda.scope.arn(&found.name);
    let _writer = lambda.store.lock().await;
    // Read again under the lock: another change may have committed meanwhile.
    let f = lambda
        .store
        .get(&found.name)
        .ok_or_else(|| error::function_not_found(&arn))?;
    reject_declared(&f, &arn)?;
    check_revision(&body, &f)?;
    let mut record = f.record.clone();
    if let Some(x) = settings.role {
        record.role = x;
    }
    if let Some(x) = settings.runtime {
        record.runtime = x;
    }
    if let Some(x) = settings.handler {
        record.handler = x;
    }
    if let Some(x) = settings.description {
        record.description = x;
    }
    if let Some(x) = settings.timeout_s {
        record.timeout_s = x;
    }
    if let Some(x) = settings.memory_mb {
        record.memory_mb = x;
    }
    if let Some(x) = settings.environment {
        record.environment = x;
    }
    record.last_modified_ms = (lambda.now_ms)();
    record.revision_id = new_revision_id();
    let f = sluice_aws::blocking(|| lambda.store.put(record)).map_err(|e| from_store(e, &arn))?;
    lambda.runtimes.retire(f.name.as_str());
    Ok(json_ok(
        StatusCode::OK,
        &configuration(lambda, &f, false),
        call.request_id,
    ))
}

pub(crate) async fn update_code(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    if call.body.len() > limits::CODE_REQUEST_BYTES_MAX {
        return Err(too_large(limits::CODE_REQUEST_BYTES_MAX, "UpdateFunctionCode").into());
    }
    let body = Json::parse(&call.body)?;
    let found = lookup(lambda, raw, None)?;
    let mut v = Validator::new();
    let architecture = read_architecture(&body, &mut v)?;
    v.finish()?;
    let zip = read_zip(&body, "UpdateFunctionCode")?;
    let arn = lambda.scope.arn(&found.name);
    reject_declared(&found, &arn)?;
    check_revision(&body, &found)?;
    if body.bool("DryRun")? == Some(true) {
        // Checked, not applied: the configuration as it would be.
        let mut f = (*found).clone();
        f.record.code_sha256 = package::sha256_base64(&zip);
        f.record.code_size = zip.len() as u64;
        return Ok(json_ok(
            StatusCode::OK,
            &configuration(lambda, &f, false),
            call.request_id,
        ));
    }
    let _writer = lambda.store.lock().await;
    let f = lambda
        .store
        .get(&found.name)
        .ok_or_else(|| error::function_not_found(&arn))?;
    check_revision(&body, &f)?;
    let mut record = f.record.clone();
    if let Some(a) = architecture {
        record.architecture = a;
    }
    record.last_modified_ms = (lambda.now_ms)();
    record.revision_id = new_revision_id();
    let (f, old_code) = sluice_aws::blocking(|| lambda.store.update_code(record, &zip))
        .map_err(|e| from_store(e, &arn))?;
    lambda.runtimes.retire(f.name.as_str());
    // Invocations already running keep their code until they end: the old revision goes
    // once the longest of them could have finished.
    let grace = Duration::from_secs(u64::from(found.record.timeout_s.max(f.record.timeout_s)) + 10);
    let weak = Arc::downgrade(lambda);
    let name = f.name.clone();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        if let Some(lambda) = weak.upgrade() {
            let _ = tokio::task::spawn_blocking(move || lambda.store.remove_code(&name, &old_code))
                .await;
        }
    });
    Ok(json_ok(
        StatusCode::OK,
        &configuration(lambda, &f, false),
        call.request_id,
    ))
}

pub(crate) async fn delete(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let found = lookup(lambda, raw, call.query("Qualifier"))?;
    let arn = lambda.scope.arn(&found.name);
    reject_declared(&found, &arn)?;
    let _writer = lambda.store.lock().await;
    sluice_aws::blocking(|| lambda.store.delete(&found.name)).map_err(|e| from_store(e, &arn))?;
    lambda.events.remove(&found.name);
    lambda.runtimes.retire(found.name.as_str());
    Ok(error::empty(StatusCode::NO_CONTENT, call.request_id))
}

/// A `FunctionConfiguration`. `creating`: the answer to CreateFunction, which shows the
/// function as AWS does at that moment (Pending, being created); the code is unpacked before
/// it is sent, so every later read shows it Active.
pub(crate) fn configuration(lambda: &Lambda, f: &Function, creating: bool) -> Value {
    let r = &f.record;
    let role = if r.role.is_empty() {
        format!("arn:aws:iam::{}:role/sluice", lambda.scope.account_id)
    } else {
        r.role.clone()
    };
    let mut out = json!({
        "FunctionName": f.name.as_str(),
        "FunctionArn": lambda.scope.arn(&f.name),
        "Runtime": r.runtime,
        "Role": role,
        "Handler": r.handler,
        "CodeSize": r.code_size,
        "Description": r.description,
        "Timeout": r.timeout_s,
        "MemorySize": r.memory_mb,
        "LastModified": last_modified(r.last_modified_ms),
        "CodeSha256": r.code_sha256,
        "Version": LATEST,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": r.revision_id,
        "PackageType": "Zip",
        "Architectures": [r.architecture],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", f.name)},
    });
    if !r.environment.is_empty() {
        out["Environment"] = json!({ "Variables": r.environment });
    }
    if creating {
        out["State"] = json!("Pending");
        out["StateReason"] = json!("The function is being created.");
        out["StateReasonCode"] = json!("Creating");
    } else {
        out["State"] = json!("Active");
        out["LastUpdateStatus"] = json!("Successful");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert!(is_role_arn("arn:aws:iam::000000000000:role/lambda-role"));
        assert!(is_role_arn("arn:aws:iam::123456789012:role/path/to/r"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/x"));
        assert!(!is_role_arn("arn:aws:iam::0000:role/x"));
        assert!(!is_role_arn("role/x"));
        assert!(!is_role_arn("arn:aws:iam::000000000000:user/x"));
        assert!(!is_role_arn("arn:aws:iam::000000000000:role"));
    }

    #[test]
    fn environment_limits() {
        let mut vars = BTreeMap::new();
        vars.insert("GOOD_NAME".to_string(), "x".to_string());
        assert!(check_environment(&vars).is_ok());
        vars.insert("AWS_REGION".to_string(), "x".to_string());
        let e = check_environment(&vars).unwrap_err();
        assert!(e
            .message
            .unwrap()
            .ends_with("Reserved keys used in this request: AWS_REGION"));
        // At 4 KB and one past: {"K":"<v>"} is 8 bytes of framing.
        let mut vars = BTreeMap::new();
        vars.insert(
            "KK".to_string(),
            "v".repeat(limits::ENVIRONMENT_BYTES_MAX - 9),
        );
        assert!(check_environment(&vars).is_ok());
        vars.insert(
            "KK".to_string(),
            "v".repeat(limits::ENVIRONMENT_BYTES_MAX - 8),
        );
        let e = check_environment(&vars).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterValueException");
        let mut vars = BTreeMap::new();
        vars.insert("1BAD".to_string(), "x".to_string());
        assert_eq!(
            check_environment(&vars).unwrap_err().type_name(),
            "ValidationException"
        );
    }
}

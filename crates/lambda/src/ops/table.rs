//! Every operation of the Lambda API (the 2015-03-31 model), by method and path, so that a
//! request for one sluice does not serve yet is answered with its name. Generated from the
//! API model; `{X}` matches one path segment.

/// (operation, method, path template with its fixed query part, if any).
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    (
        "AddLayerVersionPermission",
        "POST",
        "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy",
    ),
    (
        "AddPermission",
        "POST",
        "/2015-03-31/functions/{FunctionName}/policy",
    ),
    (
        "CheckpointDurableExecution",
        "POST",
        "/2025-12-01/durable-executions/{DurableExecutionArn}/checkpoint",
    ),
    (
        "CreateAlias",
        "POST",
        "/2015-03-31/functions/{FunctionName}/aliases",
    ),
    (
        "CreateCapacityProvider",
        "POST",
        "/2025-11-30/capacity-providers",
    ),
    (
        "CreateCodeSigningConfig",
        "POST",
        "/2020-04-22/code-signing-configs",
    ),
    (
        "CreateEventSourceMapping",
        "POST",
        "/2015-03-31/event-source-mappings",
    ),
    ("CreateFunction", "POST", "/2015-03-31/functions"),
    (
        "CreateFunctionUrlConfig",
        "POST",
        "/2021-10-31/functions/{FunctionName}/url",
    ),
    (
        "DeleteAlias",
        "DELETE",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
    ),
    (
        "DeleteCapacityProvider",
        "DELETE",
        "/2025-11-30/capacity-providers/{CapacityProviderName}",
    ),
    (
        "DeleteCodeSigningConfig",
        "DELETE",
        "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
    ),
    (
        "DeleteEventSourceMapping",
        "DELETE",
        "/2015-03-31/event-source-mappings/{UUID}",
    ),
    (
        "DeleteFunction",
        "DELETE",
        "/2015-03-31/functions/{FunctionName}",
    ),
    (
        "DeleteFunctionCodeSigningConfig",
        "DELETE",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
    ),
    (
        "DeleteFunctionConcurrency",
        "DELETE",
        "/2017-10-31/functions/{FunctionName}/concurrency",
    ),
    (
        "DeleteFunctionEventInvokeConfig",
        "DELETE",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
    ),
    (
        "DeleteFunctionUrlConfig",
        "DELETE",
        "/2021-10-31/functions/{FunctionName}/url",
    ),
    (
        "DeleteLayerVersion",
        "DELETE",
        "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}",
    ),
    (
        "DeleteProvisionedConcurrencyConfig",
        "DELETE",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
    ),
    ("GetAccountSettings", "GET", "/2016-08-19/account-settings"),
    (
        "GetAlias",
        "GET",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
    ),
    (
        "GetCapacityProvider",
        "GET",
        "/2025-11-30/capacity-providers/{CapacityProviderName}",
    ),
    (
        "GetCodeSigningConfig",
        "GET",
        "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
    ),
    (
        "GetDurableExecution",
        "GET",
        "/2025-12-01/durable-executions/{DurableExecutionArn}",
    ),
    (
        "GetDurableExecutionHistory",
        "GET",
        "/2025-12-01/durable-executions/{DurableExecutionArn}/history",
    ),
    (
        "GetDurableExecutionState",
        "GET",
        "/2025-12-01/durable-executions/{DurableExecutionArn}/state",
    ),
    (
        "GetEventSourceMapping",
        "GET",
        "/2015-03-31/event-source-mappings/{UUID}",
    ),
    ("GetFunction", "GET", "/2015-03-31/functions/{FunctionName}"),
    (
        "GetFunctionCodeSigningConfig",
        "GET",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
    ),
    (
        "GetFunctionConcurrency",
        "GET",
        "/2019-09-30/functions/{FunctionName}/concurrency",
    ),
    (
        "GetFunctionConfiguration",
        "GET",
        "/2015-03-31/functions/{FunctionName}/configuration",
    ),
    (
        "GetFunctionEventInvokeConfig",
        "GET",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
    ),
    (
        "GetFunctionRecursionConfig",
        "GET",
        "/2024-08-31/functions/{FunctionName}/recursion-config",
    ),
    (
        "GetFunctionScalingConfig",
        "GET",
        "/2025-11-30/functions/{FunctionName}/function-scaling-config",
    ),
    (
        "GetFunctionUrlConfig",
        "GET",
        "/2021-10-31/functions/{FunctionName}/url",
    ),
    (
        "GetLayerVersion",
        "GET",
        "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}",
    ),
    (
        "GetLayerVersionByArn",
        "GET",
        "/2018-10-31/layers?find=LayerVersion",
    ),
    (
        "GetLayerVersionPolicy",
        "GET",
        "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy",
    ),
    (
        "GetPolicy",
        "GET",
        "/2015-03-31/functions/{FunctionName}/policy",
    ),
    (
        "GetProvisionedConcurrencyConfig",
        "GET",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
    ),
    (
        "GetRuntimeManagementConfig",
        "GET",
        "/2021-07-20/functions/{FunctionName}/runtime-management-config",
    ),
    (
        "Invoke",
        "POST",
        "/2015-03-31/functions/{FunctionName}/invocations",
    ),
    (
        "InvokeAsync",
        "POST",
        "/2014-11-13/functions/{FunctionName}/invoke-async",
    ),
    (
        "InvokeWithResponseStream",
        "POST",
        "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
    ),
    (
        "ListAliases",
        "GET",
        "/2015-03-31/functions/{FunctionName}/aliases",
    ),
    (
        "ListCapacityProviders",
        "GET",
        "/2025-11-30/capacity-providers",
    ),
    (
        "ListCodeSigningConfigs",
        "GET",
        "/2020-04-22/code-signing-configs",
    ),
    (
        "ListDurableExecutionsByFunction",
        "GET",
        "/2025-12-01/functions/{FunctionName}/durable-executions",
    ),
    (
        "ListEventSourceMappings",
        "GET",
        "/2015-03-31/event-source-mappings",
    ),
    (
        "ListFunctionEventInvokeConfigs",
        "GET",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config/list",
    ),
    (
        "ListFunctionUrlConfigs",
        "GET",
        "/2021-10-31/functions/{FunctionName}/urls",
    ),
    (
        "ListFunctionVersionsByCapacityProvider",
        "GET",
        "/2025-11-30/capacity-providers/{CapacityProviderName}/function-versions",
    ),
    ("ListFunctions", "GET", "/2015-03-31/functions"),
    (
        "ListFunctionsByCodeSigningConfig",
        "GET",
        "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}/functions",
    ),
    (
        "ListLayerVersions",
        "GET",
        "/2018-10-31/layers/{LayerName}/versions",
    ),
    ("ListLayers", "GET", "/2018-10-31/layers"),
    (
        "ListProvisionedConcurrencyConfigs",
        "GET",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL",
    ),
    ("ListTags", "GET", "/2017-03-31/tags/{Resource}"),
    (
        "ListVersionsByFunction",
        "GET",
        "/2015-03-31/functions/{FunctionName}/versions",
    ),
    (
        "PublishLayerVersion",
        "POST",
        "/2018-10-31/layers/{LayerName}/versions",
    ),
    (
        "PublishVersion",
        "POST",
        "/2015-03-31/functions/{FunctionName}/versions",
    ),
    (
        "PutFunctionCodeSigningConfig",
        "PUT",
        "/2020-06-30/functions/{FunctionName}/code-signing-config",
    ),
    (
        "PutFunctionConcurrency",
        "PUT",
        "/2017-10-31/functions/{FunctionName}/concurrency",
    ),
    (
        "PutFunctionEventInvokeConfig",
        "PUT",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
    ),
    (
        "PutFunctionRecursionConfig",
        "PUT",
        "/2024-08-31/functions/{FunctionName}/recursion-config",
    ),
    (
        "PutFunctionScalingConfig",
        "PUT",
        "/2025-11-30/functions/{FunctionName}/function-scaling-config",
    ),
    (
        "PutProvisionedConcurrencyConfig",
        "PUT",
        "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
    ),
    (
        "PutRuntimeManagementConfig",
        "PUT",
        "/2021-07-20/functions/{FunctionName}/runtime-management-config",
    ),
    (
        "RemoveLayerVersionPermission",
        "DELETE",
        "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy/{StatementId}",
    ),
    (
        "RemovePermission",
        "DELETE",
        "/2015-03-31/functions/{FunctionName}/policy/{StatementId}",
    ),
    (
        "SendDurableExecutionCallbackFailure",
        "POST",
        "/2025-12-01/durable-execution-callbacks/{CallbackId}/fail",
    ),
    (
        "SendDurableExecutionCallbackHeartbeat",
        "POST",
        "/2025-12-01/durable-execution-callbacks/{CallbackId}/heartbeat",
    ),
    (
        "SendDurableExecutionCallbackSuccess",
        "POST",
        "/2025-12-01/durable-execution-callbacks/{CallbackId}/succeed",
    ),
    (
        "StopDurableExecution",
        "POST",
        "/2025-12-01/durable-executions/{DurableExecutionArn}/stop",
    ),
    ("TagResource", "POST", "/2017-03-31/tags/{Resource}"),
    ("UntagResource", "DELETE", "/2017-03-31/tags/{Resource}"),
    (
        "UpdateAlias",
        "PUT",
        "/2015-03-31/functions/{FunctionName}/aliases/{Name}",
    ),
    (
        "UpdateCapacityProvider",
        "PUT",
        "/2025-11-30/capacity-providers/{CapacityProviderName}",
    ),
    (
        "UpdateCodeSigningConfig",
        "PUT",
        "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}",
    ),
    (
        "UpdateEventSourceMapping",
        "PUT",
        "/2015-03-31/event-source-mappings/{UUID}",
    ),
    (
        "UpdateFunctionCode",
        "PUT",
        "/2015-03-31/functions/{FunctionName}/code",
    ),
    (
        "UpdateFunctionConfiguration",
        "PUT",
        "/2015-03-31/functions/{FunctionName}/configuration",
    ),
    (
        "UpdateFunctionEventInvokeConfig",
        "POST",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
    ),
    (
        "UpdateFunctionUrlConfig",
        "PUT",
        "/2021-10-31/functions/{FunctionName}/url",
    ),
];

/// The operation a request names, if any.
pub fn operation_of(method: &str, path: &str, query: Option<&str>) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(&'static str, bool)> = None;
    for (op, m, template) in OPERATIONS {
        if *m != method {
            continue;
        }
        let (template_path, template_query) = match template.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (*template, None),
        };
        let wanted: Vec<&str> = template_path.trim_end_matches('/').split('/').collect();
        if wanted.len() != segments.len()
            || !wanted
                .iter()
                .zip(&segments)
                .all(|(w, s)| (w.starts_with('{') && !s.is_empty()) || w == s)
        {
            continue;
        }
        match template_query {
            Some(q) => {
                if query.is_some_and(|have| have.split('&').any(|p| p == q)) {
                    return Some(op);
                }
            }
            None => {
                // A template with literal segments where another has a parameter wins.
                let literal = !wanted.iter().any(|w| w.starts_with('{'));
                if best.is_none_or(|(_, l)| literal && !l) {
                    best = Some((op, literal));
                }
            }
        }
    }
    best.map(|(op, _)| op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_operations() {
        assert_eq!(
            operation_of("POST", "/2015-03-31/functions/f/versions", None),
            Some("PublishVersion")
        );
        assert_eq!(
            operation_of("GET", "/2018-10-31/layers", Some("find=LayerVersion&Arn=x")),
            Some("GetLayerVersionByArn")
        );
        assert_eq!(
            operation_of("GET", "/2018-10-31/layers", None),
            Some("ListLayers")
        );
        assert_eq!(
            operation_of("GET", "/2015-03-31/event-source-mappings/", None),
            Some("ListEventSourceMappings")
        );
        assert_eq!(operation_of("GET", "/2015-03-31/nothing", None), None);
        assert_eq!(OPERATIONS.len(), 85);
    }
}

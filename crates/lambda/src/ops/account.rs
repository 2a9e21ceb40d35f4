//! GetAccountSettings: the account's limits and what the functions use of them.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;

use crate::error::Failure;
use crate::limits;
use crate::service::{json_ok, Call, Lambda};

pub(crate) async fn get_settings(
    lambda: &Arc<Lambda>,
    call: Call<'_>,
) -> Result<axum::response::Response, Failure> {
    let functions = lambda.store.list();
    let code: u64 = functions.iter().map(|f| f.record.code_size).sum();
    let reserved: u64 = functions
        .iter()
        .filter_map(|f| f.record.reserved_concurrency)
        .map(u64::from)
        .sum();
    let out = json!({
        "AccountLimit": {
            "TotalCodeSize": limits::ACCOUNT_CODE_BYTES_MAX,
            "CodeSizeUnzipped": limits::UNZIPPED_BYTES_MAX,
            "CodeSizeZipped": limits::ZIP_FILE_BYTES_MAX,
            "ConcurrentExecutions": limits::ACCOUNT_CONCURRENCY_MAX,
            "UnreservedConcurrentExecutions": u64::from(limits::ACCOUNT_CONCURRENCY_MAX).saturating_sub(reserved),
        },
        "AccountUsage": {
            "TotalCodeSize": code,
            "FunctionCount": functions.len(),
        },
    });
    Ok(json_ok(StatusCode::OK, &out, call.request_id))
}

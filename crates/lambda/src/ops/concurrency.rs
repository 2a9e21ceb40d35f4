//! PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency: a function's
//! reserved concurrency, which is also how many processes it may have at once (0 throttles
//! every invocation).

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use sluice_aws::validate::Validator;

use super::{lookup, Json};
use crate::error::{self, from_store, invalid_parameter, Failure};
use crate::limits;
use crate::service::{json_ok, Call, Lambda};
use crate::store::{new_revision_id, StoreError};

type Answer = Result<axum::response::Response, Failure>;

pub(crate) async fn put(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let body = Json::parse(&call.body)?;
    let found = lookup(lambda, raw, None)?;
    let mut v = Validator::new();
    let n = body.int("ReservedConcurrentExecutions")?;
    v.required(n, "reservedConcurrentExecutions");
    v.range(n, "reservedConcurrentExecutions", Some(0), None);
    v.finish()?;
    let n = n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    let arn = lambda.scope.arn(&found.name);
    if found.declared {
        return Err(from_store(StoreError::Declared(found.name.clone()), &arn).into());
    }
    let _writer = lambda.store.lock().await;
    // The account's concurrency less what must stay unreserved, less the other functions'.
    let others: u64 = lambda
        .store
        .list()
        .iter()
        .filter(|f| f.name != found.name)
        .filter_map(|f| f.record.reserved_concurrency)
        .map(u64::from)
        .sum();
    let available = u64::from(limits::ACCOUNT_CONCURRENCY_MAX - limits::UNRESERVED_CONCURRENCY_MIN);
    if others + u64::from(n) > available {
        return Err(invalid_parameter(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
            limits::UNRESERVED_CONCURRENCY_MIN
        ))
        .into());
    }
    let f = lambda
        .store
        .get(&found.name)
        .ok_or_else(|| error::function_not_found(&arn))?;
    let mut record = f.record.clone();
    record.reserved_concurrency = Some(n);
    record.revision_id = new_revision_id();
    sluice_aws::blocking(|| lambda.store.put(record)).map_err(|e| from_store(e, &arn))?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"ReservedConcurrentExecutions": n}),
        call.request_id,
    ))
}

pub(crate) async fn get(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = lookup(lambda, raw, None)?;
    let out = match f.record.reserved_concurrency {
        Some(n) => json!({"ReservedConcurrentExecutions": n}),
        None => json!({}),
    };
    Ok(json_ok(StatusCode::OK, &out, call.request_id))
}

pub(crate) async fn delete(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let found = lookup(lambda, raw, None)?;
    let arn = lambda.scope.arn(&found.name);
    if found.declared {
        return Err(from_store(StoreError::Declared(found.name.clone()), &arn).into());
    }
    let _writer = lambda.store.lock().await;
    let f = lambda
        .store
        .get(&found.name)
        .ok_or_else(|| error::function_not_found(&arn))?;
    if f.record.reserved_concurrency.is_some() {
        let mut record = f.record.clone();
        record.reserved_concurrency = None;
        record.revision_id = new_revision_id();
        sluice_aws::blocking(|| lambda.store.put(record)).map_err(|e| from_store(e, &arn))?;
    }
    Ok(error::empty(StatusCode::NO_CONTENT, call.request_id))
}

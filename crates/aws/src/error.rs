//! AWS errors as a client sees them: the error type (an enum, never compared as a string), the
//! HTTP status and the message. Each service maps its own domain errors to these in one
//! exhaustive function of its own.

use http::StatusCode;

/// Every AWS error type a sluice service answers with. The wire name is [`ErrorType::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// The body does not parse, or a member has the wrong type.
    Serialization,
    UnknownOperation,
    Validation,
    InvalidArgument,
    ResourceNotFound,
    ResourceInUse,
    LimitExceeded,
    ExpiredIterator,
    ExpiredNextToken,
    ProvisionedThroughputExceeded,
    InternalFailure,
    /// An operation of the API that sluice does not have (yet).
    UnsupportedOperation,
    /// The server cannot take the request now (a full disk, a destination that is behind).
    ServiceUnavailable,
    MissingAuthenticationToken,
    UnrecognizedClient,
    InvalidSignature,
    IncompleteSignature,
    AccessDenied,
    // Lambda's (REST-JSON; the body carries `Type` and `message` or `Message`).
    InvalidParameterValue,
    ResourceConflict,
    TooManyRequests,
    RequestEntityTooLarge,
    InvalidRuntime,
    InvalidRequestContent,
    PreconditionFailed,
    /// Lambda's internal error (`ServiceException`).
    Service,
    // Firehose's.
    /// UpdateDestination with a stale CurrentDeliveryStreamVersionId.
    ConcurrentModification,
    /// A KMS key Firehose cannot use (here: not one of the lake's `[[keys]]`).
    InvalidKmsResource,
}

impl ErrorType {
    /// The name clients read from `__type` / `x-amzn-ErrorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Serialization => "SerializationException",
            ErrorType::UnknownOperation => "UnknownOperationException",
            ErrorType::Validation => "ValidationException",
            ErrorType::InvalidArgument => "InvalidArgumentException",
            ErrorType::ResourceNotFound => "ResourceNotFoundException",
            ErrorType::ResourceInUse => "ResourceInUseException",
            ErrorType::LimitExceeded => "LimitExceededException",
            ErrorType::ExpiredIterator => "ExpiredIteratorException",
            ErrorType::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorType::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorType::InternalFailure => "InternalFailure",
            ErrorType::UnsupportedOperation => "UnsupportedOperationException",
            ErrorType::ServiceUnavailable => "ServiceUnavailableException",
            ErrorType::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorType::UnrecognizedClient => "UnrecognizedClientException",
            ErrorType::InvalidSignature => "InvalidSignatureException",
            ErrorType::IncompleteSignature => "IncompleteSignatureException",
            ErrorType::AccessDenied => "AccessDeniedException",
            ErrorType::InvalidParameterValue => "InvalidParameterValueException",
            ErrorType::ResourceConflict => "ResourceConflictException",
            ErrorType::TooManyRequests => "TooManyRequestsException",
            ErrorType::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorType::InvalidRuntime => "InvalidRuntimeException",
            ErrorType::InvalidRequestContent => "InvalidRequestContentException",
            ErrorType::PreconditionFailed => "PreconditionFailedException",
            ErrorType::Service => "ServiceException",
            ErrorType::ConcurrentModification => "ConcurrentModificationException",
            ErrorType::InvalidKmsResource => "InvalidKMSResourceException",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as an AWS JSON service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub error_type: ErrorType,
    pub status: StatusCode,
    pub message: Option<String>,
    /// SerializationException from type coercion spells the member `Message`.
    pub capital_message: bool,
}

impl ApiError {
    /// An error of `error_type` with status 400.
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> ApiError {
        ApiError {
            error_type,
            status: StatusCode::BAD_REQUEST,
            message: Some(message.into()),
            capital_message: false,
        }
    }

    pub fn with_status(self, status: StatusCode) -> ApiError {
        ApiError { status, ..self }
    }

    pub fn type_name(&self) -> &'static str {
        self.error_type.as_str()
    }

    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError {
            capital_message: true,
            ..ApiError::new(ErrorType::Serialization, message)
        }
    }

    /// A body that does not parse: no message, as AWS sends it.
    pub fn serialization_bare() -> ApiError {
        ApiError {
            message: None,
            ..ApiError::new(ErrorType::Serialization, "")
        }
    }

    pub fn unknown_operation() -> ApiError {
        ApiError {
            message: None,
            ..ApiError::new(ErrorType::UnknownOperation, "")
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Validation, message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ResourceNotFound, message)
    }

    pub fn in_use(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ResourceInUse, message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::LimitExceeded, message)
    }

    pub fn expired_iterator(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ExpiredIterator, message)
    }

    pub fn expired_next_token(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ExpiredNextToken, message)
    }

    pub fn throughput_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ProvisionedThroughputExceeded, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(ErrorType::InternalFailure, "Internal Service Failure")
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The server cannot take the request now; SDKs retry a 503 with backoff.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::ServiceUnavailable, message)
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
    }

    pub fn auth(error_type: ErrorType, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(error_type, message).with_status(status)
    }

    /// An operation of the API that sluice does not have yet: a type of its own, so that
    /// clients can tell it from a mistake in their request. `doc` names the compatibility page.
    pub fn not_implemented(operation: &str, doc: &str) -> ApiError {
        ApiError::new(
            ErrorType::UnsupportedOperation,
            format!("sluice does not support the {operation} operation yet. See {doc}."),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.error_type),
            None => write!(f, "{}", self.error_type),
        }
    }
}

impl std::error::Error for ApiError {}

//! Extractors whose rejections use the `/v1` error body, so a malformed request gets the
//! same JSON shape as every other error, with serde's message naming the field.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// `axum::Json` with `/v1` errors.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let message = match &rejection {
        JsonRejection::JsonDataError(e) => format!(
            "invalid request body: {}",
            e.body_text().trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        ),
        JsonRejection::JsonSyntaxError(_) => format!("request body is not valid JSON: {}", rejection.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as JSON with `Content-Type: application/json`".to_owned()
        }
        _ => rejection.body_text(),
    };
    // A body that parses but does not fit is a 400 like every other validation error of
    // this API (axum's default would be 422).
    let status = match rejection {
        JsonRejection::JsonDataError(_) => axum::http::StatusCode::BAD_REQUEST,
        _ => rejection.status(),
    };
    ApiError::new(status, message)
}

/// `axum::extract::Query` with `/v1` errors.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// `axum::extract::Path` with `/v1` errors.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| ApiError::new(rejection.status(), rejection.body_text()))
    }
}

/// Checks an integration name (see [`crate::manifest::check_name`], which `weft new` uses too).
pub fn integration_name(name: &str) -> Result<(), ApiError> {
    crate::manifest::check_name(name).map_err(ApiError::bad_request)
}

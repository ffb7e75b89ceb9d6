//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into the same JSON
//! objects a JSON body gives, for the built-in kinds typed clients send that way: kubectl 1.33's
//! `create secret|configmap|namespace|serviceaccount|role|rolebinding|clusterrole|
//! clusterrolebinding|deployment|service`, and Helm's Secret storage driver (its release
//! Secrets, and the DeleteOptions of client-go's typed `Delete`).
//!
//! Hand-written rather than generated: the wire format Kubernetes uses is small (varints and
//! length-delimited fields), and a table per message (`tables`) is all each kind needs.
//! Responses stay JSON: every such client asks for `application/vnd.kubernetes.protobuf,
//! application/json` and reads either.

mod envelope;
mod message;
mod tables;
mod wire;

use super::error::{ApiError, ApiResult};
use message::Error;
use serde_json::Value;

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A create or update body: the object as JSON, `apiVersion` and `kind` from the envelope.
/// A kind without a table stays a 415, as before, so nothing is read by guesswork.
pub fn decode_object(body: &[u8]) -> ApiResult<Value> {
    let unknown = envelope::open(body).map_err(|e| status(e, "object"))?;
    let Some(message) = tables::kind(&unknown.api_version, &unknown.kind) else {
        return Err(ApiError::unsupported_media_type(MEDIA_TYPE));
    };
    let what = format!("{} ({})", unknown.kind, unknown.api_version);
    let mut object = message::decode(message, unknown.raw, "").map_err(|e| status(e, &what))?;
    object.insert("apiVersion".into(), Value::String(unknown.api_version));
    object.insert("kind".into(), Value::String(unknown.kind));
    Ok(Value::Object(object))
}

/// A DELETE body from a protobuf client: DeleteOptions, as JSON.
pub fn decode_delete_options(body: &[u8]) -> ApiResult<Value> {
    let unknown = envelope::open(body).map_err(|e| status(e, "DeleteOptions"))?;
    if unknown.kind != "DeleteOptions" {
        return Err(ApiError::bad_request(format!(
            "the protobuf body of a delete must be DeleteOptions, not {} ({})",
            unknown.kind, unknown.api_version
        )));
    }
    message::decode(&tables::DELETE_OPTIONS, unknown.raw, "")
        .map(Value::Object)
        .map_err(|e| status(e, "DeleteOptions"))
}

fn status(error: Error, what: &str) -> ApiError {
    match error {
        Error::Malformed(why) => ApiError::bad_request(format!(
            "the protobuf body of the {what} is malformed: {why}"
        )),
        Error::UnknownField {
            message,
            number,
            at,
        } => {
            let place = if at.is_empty() {
                String::new()
            } else {
                format!(" (at {at})")
            };
            ApiError::bad_request(format!(
                "the protobuf body of the {what} has field {number} of {message}{place}, which \
                 the sim's protobuf tables do not describe; the field is not decoded rather than \
                 dropped, so send this object as JSON"
            ))
        }
    }
}

#[cfg(test)]
mod tests;

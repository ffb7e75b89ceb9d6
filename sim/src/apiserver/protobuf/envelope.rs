//! The envelope of every Kubernetes protobuf body: the magic `k8s\0`, then a `runtime.Unknown`
//! (k8s.io/apimachinery pkg/runtime/generated.proto) whose TypeMeta names the kind and whose
//! `raw` holds the typed message.

use super::message::Error;
use super::wire::{Fields, Value as Wire};

/// What every protobuf-encoded Kubernetes object starts with.
pub const MAGIC: &[u8] = b"k8s\x00";

pub struct Unknown<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
}

pub fn open(body: &[u8]) -> Result<Unknown<'_>, Error> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(|| {
        Error::Malformed(
            "it does not start with the Kubernetes protobuf prefix \"k8s\\x00\"".into(),
        )
    })?;
    let malformed = |e: String| Error::Malformed(format!("in its runtime.Unknown envelope: {e}"));
    let mut unknown = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: b"",
    };
    let mut content_encoding = "";
    for field in Fields::new(rest) {
        match field.map_err(malformed)? {
            // typeMeta: runtime.TypeMeta{apiVersion = 1, kind = 2}
            (1, Wire::Len(type_meta)) => {
                for field in Fields::new(type_meta) {
                    match field.map_err(malformed)? {
                        (1, Wire::Len(b)) => unknown.api_version = text(b, "apiVersion")?,
                        (2, Wire::Len(b)) => unknown.kind = text(b, "kind")?,
                        (number, _) => {
                            return Err(malformed(format!(
                                "TypeMeta has an unexpected field {number}"
                            )));
                        }
                    }
                }
            }
            (2, Wire::Len(raw)) => unknown.raw = raw,
            (3, Wire::Len(b)) => content_encoding = std::str::from_utf8(b).unwrap_or("?"),
            // contentType: the sim reads the raw bytes as protobuf whatever this says; a client
            // nesting JSON in a protobuf envelope does not exist.
            (4, Wire::Len(_)) => {}
            (number, _) => {
                return Err(malformed(format!("unexpected field {number}")));
            }
        }
    }
    if !content_encoding.is_empty() {
        return Err(malformed(format!(
            "contentEncoding {content_encoding:?} is not supported (only none)"
        )));
    }
    if unknown.kind.is_empty() || unknown.api_version.is_empty() {
        return Err(malformed(
            "the TypeMeta names no apiVersion and kind".into(),
        ));
    }
    Ok(unknown)
}

fn text(bytes: &[u8], what: &str) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        Error::Malformed(format!(
            "in its runtime.Unknown envelope: {what} is not UTF-8"
        ))
    })
}

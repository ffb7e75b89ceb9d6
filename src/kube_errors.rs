//! Kubernetes API errors as one readable line. kube's own Display of an API error appends the
//! whole `Status` in Debug form, which buries the cause in an operator's one-line start-up error.

/// The API server's message, code and reason (`namespaces "x" not found (404 NotFound)`); other
/// errors as kube words them. A missing namespace says what to do about it.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let mut line = format!("{} ({} {})", status.message, status.code, status.reason);
            let missing_namespace = status.code == 404
                && status
                    .details
                    .as_ref()
                    .is_some_and(|d| d.kind == "namespaces");
            if missing_namespace {
                line.push_str(
                    "; create the namespace, or point --operator-namespace at the one the \
                     operator runs in",
                );
            }
            line
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::StatusDetails;

    #[test]
    fn a_missing_namespace_is_one_line_that_says_what_to_do() {
        let status = Status::failure("namespaces \"beskar7-system\" not found", "NotFound")
            .with_code(404)
            .with_details(StatusDetails {
                name: "beskar7-system".into(),
                group: String::new(),
                kind: "namespaces".into(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: 0,
            });
        let line = describe(&kube::Error::Api(Box::new(status)));
        assert_eq!(
            line,
            "namespaces \"beskar7-system\" not found (404 NotFound); create the namespace, or \
             point --operator-namespace at the one the operator runs in"
        );
        assert!(!line.contains("Status {"));
    }
}

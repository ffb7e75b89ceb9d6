//! metav1 Conditions shared by the controllers: one builder that keeps a
//! condition's `lastTransitionTime` while its status does not change, so a settled object
//! computes exactly the status it already has and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `Paused`: the CAPI pause condition type (reasons `Paused` / `NotPaused`).
pub const PAUSED: &str = "Paused";

/// The condition `type_` with this verdict, its transition time kept from `previous` when the
/// status is unchanged.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    with_status(previous, type_, status, reason, message, generation, now)
}

/// [`condition`] with the status as metav1 spells it (`True`, `False` or `Unknown`).
pub fn with_status(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = match previous.iter().find(|c| c.type_ == type_) {
        Some(b) if b.status == status => b.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate(message, 1024),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Replaces (or adds) `c` in `list`, keeping the order of the others.
pub fn set(list: &mut Vec<Condition>, c: Condition) {
    match list.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) => *x = c,
        None => list.push(c),
    }
}

/// The condition `type_` of `list`, if any.
pub fn find<'a>(list: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    list.iter().find(|c| c.type_ == type_)
}

/// At most `max` bytes, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_survives_an_unchanged_status() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2).unwrap());
        let a = condition(&[], "Ready", false, "X", "m", Some(1), &t0);
        let b = condition(
            std::slice::from_ref(&a),
            "Ready",
            false,
            "Y",
            "n",
            Some(1),
            &t1,
        );
        assert_eq!(b.last_transition_time, t0);
        let c = condition(&[b], "Ready", true, "Z", "", Some(1), &t1);
        assert_eq!(c.last_transition_time, t1);
    }
}

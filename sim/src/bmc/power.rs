//! Power as a BMC reports it: transitions take time, and a boot at the end of a power-on
//! consumes a one-time boot override.

/// A transition in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    pub target_on: bool,
    /// The server boots when this completes (power-on and restarts).
    pub boots: bool,
    pub generation: u64,
}

#[derive(Debug)]
pub(crate) struct Power {
    pub on: bool,
    pub pending: Option<Pending>,
    generation: u64,
}

/// What a `ResetType` asks for, given the current state: `None` when nothing changes.
pub(crate) fn plan(reset_type: &str, on: bool) -> Option<(bool, bool)> {
    match reset_type {
        "On" | "ForceOn" => (!on).then_some((true, true)),
        "ForceOff" | "GracefulShutdown" => on.then_some((false, false)),
        "ForceRestart" | "GracefulRestart" | "PowerCycle" => Some((true, true)),
        "PushPowerButton" => Some((!on, !on)),
        _ => None,
    }
}

impl Power {
    pub fn new(on: bool) -> Self {
        Power {
            on,
            pending: None,
            generation: 0,
        }
    }

    /// `PowerState` as Redfish reports it.
    pub fn reported(&self) -> &'static str {
        match self.pending {
            Some(p) if p.target_on => "PoweringOn",
            Some(_) => "PoweringOff",
            None if self.on => "On",
            None => "Off",
        }
    }

    /// Where the server is headed: the pending target, else where it is.
    pub fn heading_on(&self) -> bool {
        self.pending.map_or(self.on, |p| p.target_on)
    }

    pub fn start(&mut self, target_on: bool, boots: bool) -> u64 {
        self.generation += 1;
        self.pending = Some(Pending {
            target_on,
            boots,
            generation: self.generation,
        });
        self.generation
    }

    /// Completes the transition `generation` if it is still the current one.
    pub fn complete(&mut self, generation: u64) -> Option<Pending> {
        let pending = self.pending.filter(|p| p.generation == generation)?;
        self.on = pending.target_on;
        self.pending = None;
        Some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_types_map_to_transitions() {
        assert_eq!(plan("On", false), Some((true, true)));
        assert_eq!(plan("On", true), None, "already on: nothing to do");
        assert_eq!(plan("ForceOff", true), Some((false, false)));
        assert_eq!(plan("GracefulShutdown", false), None);
        assert_eq!(plan("ForceRestart", true), Some((true, true)));
        assert_eq!(plan("Nmi", true), None);
    }

    #[test]
    fn a_superseded_transition_does_not_complete() {
        let mut power = Power::new(false);
        let first = power.start(true, true);
        assert_eq!(power.reported(), "PoweringOn");
        let second = power.start(false, false);
        assert_eq!(power.complete(first), None);
        assert_eq!(power.complete(second).map(|p| p.target_on), Some(false));
        assert_eq!(power.reported(), "Off");
    }
}

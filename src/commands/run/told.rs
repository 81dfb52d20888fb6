//! Warnings about what a job did or sent, said and kept in the record up to a limit, the
//! rest counted in one line: a job that declared 1,035 outputs it never wrote printed 1,035
//! warnings of 4 KB each. Those about a secret have limits of their own, so that no flood of
//! others can push one out of sight.

use crate::model::Capture;
use crate::ui;

/// At most this many warnings of a kind are printed, and at most [`NOTES_KEPT`] kept.
pub(super) const WARNINGS_SAID: usize = 20;
const NOTES_KEPT: usize = 100;

pub(super) struct Told {
    /// What they are about, for the line that counts the rest.
    about: &'static str,
    /// How many of each kind: others, about a secret.
    counts: [usize; 2],
}

impl Told {
    pub(super) fn new(about: &'static str) -> Told {
        Told {
            about,
            counts: [0, 0],
        }
    }

    /// A warning, said and kept up to the limits.
    pub(super) fn note(&mut self, capture: &mut Capture, msg: String) {
        self.tell(0, capture, msg);
    }

    /// A warning about a secret (a path, a name or a tag that held one): limits of its own.
    pub(super) fn secret(&mut self, capture: &mut Capture, msg: String) {
        self.tell(1, capture, msg);
    }

    fn tell(&mut self, kind: usize, capture: &mut Capture, msg: String) {
        self.counts[kind] += 1;
        let n = self.counts[kind];
        if n <= WARNINGS_SAID {
            ui::warn(&msg);
        }
        if n <= NOTES_KEPT {
            capture.notes.push(msg);
        }
    }

    /// The line that counts those neither said nor kept, of each kind.
    pub(super) fn finish(self, capture: &mut Capture) {
        for (all, kind) in self.counts.into_iter().zip(["", " about secrets"]) {
            let about = self.about;
            if all > WARNINGS_SAID {
                ui::warn(format_args!(
                    "{} more warnings{kind} about {about} ({all} in all; the first {} are in the record: `lineage show`)",
                    all - WARNINGS_SAID,
                    all.min(NOTES_KEPT)
                ));
            }
            if all > NOTES_KEPT {
                capture.notes.push(format!(
                    "{} more warnings{kind} about {about}, not kept ({all} in all)",
                    all - NOTES_KEPT
                ));
            }
        }
    }
}

-- Door operations (issue 18, docs/design.md section 8): a gate's journal holds, besides
-- admissions and denials, annulments (staff, or a passage that never came, undo the admission
-- ref_seq of the same gate), passage confirmations of ref_seq, and tailgates (a passage with no
-- admission). Each is a check-in row of its own; the annulled admission is marked, so presence,
-- conflicts and figures leave it out, and its annulment is in the feed ('checkin.annulled').
ALTER TABLE checkins DROP CONSTRAINT checkins_outcome_check;
ALTER TABLE checkins
    ADD CONSTRAINT checkins_outcome_check
        CHECK (outcome IN ('admit', 'deny', 'annul', 'passed', 'tailgate')),
    ADD COLUMN ref_seq bigint CHECK (ref_seq >= 1),
    ADD COLUMN annulled boolean NOT NULL DEFAULT false;

-- Tessera gate store, version 5: holder-bound rotating codes (T2, docs/design.md section 5).
-- An event may require them (a static T1 code is then refused); the period (seconds a code
-- lives) is needed to check a T2 code's step whether or not the event requires them.
ALTER TABLE events ADD COLUMN rotating INTEGER NOT NULL DEFAULT 0 CHECK (rotating IN (0, 1));
ALTER TABLE events ADD COLUMN rotation_period INTEGER NOT NULL DEFAULT 10
    CHECK (rotation_period BETWEEN 2 AND 300);

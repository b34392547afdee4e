-- Tessera gate store, version 8: automatic check-out (shared/checkout.py).
-- The event's check-out time, "HH:MM" local in its zone (NULL: off). Nothing is written when
-- it passes: the decision treats an entry before the latest check-out instant as yesterday's.
ALTER TABLE events ADD COLUMN checkout_time TEXT
    CHECK (checkout_time IS NULL OR (checkout_time GLOB '[0-2][0-9]:[0-5][0-9]'
                                     AND checkout_time < '24:00'));

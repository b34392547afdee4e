"""The pre-doors drill: `gate drill` and the kiosk's Drill button certify a gate before doors.

Each check is one coroutine returning one ``board.Item`` (name, ok/warn/fail/skip, a figure and
one line of explanation); ``run.run_drill`` runs them together, each bounded by
``GATE_DRILL_TIMEOUT``, so the board is ready within a few seconds whatever hangs::

    list         tickets loaded, the bundle's signer still trusted, age (local)
    keys         a trusted key pinned; every event has an active ticket key (local)
    camera       a rendered test card through capture -> decode -> verify (card)
    camera_feed  the real camera delivers frames, and how many a second (card)
    syncd        syncd answers; the credential is checked by the report (network)
    clock        skew against syncd's clock (network)
    journal      every scan acknowledged by syncd (local)
    disk         free space for GATE_DRILL_HOURS of scans (local)
    peers        each peer of the mesh proves it is an enrolled gate of this event (network)
    hooks        the admit and deny commands run and exit 0, with TESSERA_DRILL=1 (local)

A drill never writes a journal row, never moves the entry state and never admits anyone: the
test card is a T1 code signed by a throwaway key made for this drill (event 0), which every gate
refuses as an unknown key, and it is judged with the pure ``verify_code`` only.

The board goes to syncd (``POST /api/v1/gate/drill``) when the gate is enrolled and syncd
answered; a report that fails is shown under the board and changes nothing else.

Kept free of imports: ``gate.settings`` imports ``gate.drill.settings``.
"""

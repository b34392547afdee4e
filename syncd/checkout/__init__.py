"""Automatic check-out: announcing, once per event and day, that everyone counts as outside.

The rule itself needs no writes (shared.checkout): presence, figures and conflicts compare an
admission's time with the boundary. ``timer`` only tells the exchange that a boundary passed.
"""

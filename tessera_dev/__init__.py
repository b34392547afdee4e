"""Developer tools: benchmarks (``bench``), the demo (``demo``), synthetic camera scenes
(``synth``), a TCP proxy that cuts and delays links (``netproxy``) and a signed sample event
(``sample_event``). Run with ``python -m`` (``scripts/`` has thin entry points). Never
imported by the product (shared, gate, syncd, tessera_cli); never imports ``tests``."""

"""The README's demo: syncd, two gates, a video, an outage (``python -m tessera_dev.demo``)."""

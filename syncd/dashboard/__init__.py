"""The organisers' live dashboard: its page (``static/``), the stream hub and gate sightings."""

"""syncd: the central service organisers and gates talk to (aiohttp, Postgres, RabbitMQ)."""

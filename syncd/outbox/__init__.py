"""Fan-out: outbox rows relayed to RabbitMQ by one leader replica, once confirmed.

``relay`` (connections, leadership, draining), ``leader`` (one leadership term: rounds in
flight), ``frames`` (a round as one write), ``topology`` (exchanges and queues), ``metrics``,
``broker`` (the readiness probe)."""

"""The HTTP edge: operations (route + role + docs), auth, throttling, middlewares, the server,
health endpoints, the OpenAPI document and JSON logs."""

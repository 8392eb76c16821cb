"""The use cases the HTTP API, the CLI, the orchestrators and the Lambda handlers call, one
module per capability. Each takes the process's `Backends` (chalicelib.ports) explicitly."""

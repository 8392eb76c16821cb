"""An emulation of Lambda's execution model (frozen containers, cold starts, asynchronous
invocations) over one moto server, for tests and the benchmark."""

//! The integration tests of durable-grpc (one test binary: see the style guide).

mod bad_input;
mod descriptor;
mod entities;
mod examples;
mod hostile;
mod interop;
mod streams;
mod support;

"""Python and Rust on one task hub: each side calls the other's activities."""

from common import completed, equal, output


def py_calls_rust(ctx, text):
    # F1 and F2 are Rust activities of the durable samples: they append ",F1" and ",F2".
    first = yield ctx.call_activity("F1", input=text)
    return (yield ctx.call_activity("F2", input=first))


def py_shout(ctx, text):
    return text.upper() + "!"


ORCHESTRATORS = [py_calls_rust]
ACTIVITIES = [py_shout]


def python_calls_rust_activity(c):
    iid = c.schedule_new_orchestration(py_calls_rust, input="py")
    equal(output(completed(c, iid)), "py,F1,F2", "output")


def rust_calls_python_activity(c):
    # RustCallsPython is a Rust orchestration that calls the Python activity py_shout.
    iid = c.schedule_new_orchestration("RustCallsPython", input="durable")
    equal(output(completed(c, iid)), "rust got DURABLE!", "output")


def python_client_runs_rust_orchestration(c):
    iid = c.schedule_new_orchestration("Chaining", input="start")
    equal(output(completed(c, iid)), "start,F1,F2,F3,F4", "output of the Rust sample")


SCENARIOS = [
    ("python_calls_rust_activity", python_calls_rust_activity),
    ("rust_calls_python_activity", rust_calls_python_activity),
    ("python_client_runs_rust_orchestration", python_client_runs_rust_orchestration),
]

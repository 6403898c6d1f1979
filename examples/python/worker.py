"""A Python worker for `durable serve`: the seed's chaining and human-interaction patterns.

Run `durable serve` first, then `python worker.py`; start instances with start.py.
Env: DURABLETASK_HOST (default localhost:4001), DURABLE_API_KEY (if the server has one).
"""

import os
import signal
import threading
from datetime import timedelta

from durabletask import task, worker


# --- Pattern 1: function chaining. Each step's output feeds the next; a failure can be caught.

def py_f1(ctx: task.ActivityContext, value: str) -> str:
    return f"{value},F1"


def py_f2(ctx: task.ActivityContext, value: str) -> str:
    return f"{value},F2"


def py_f3(ctx: task.ActivityContext, value: str) -> str:
    return f"{value},F3"


def py_f4(ctx: task.ActivityContext, value: str) -> str:
    return f"{value},F4"


def py_chaining(ctx: task.OrchestrationContext, value: str):
    x = yield ctx.call_activity(py_f1, input=value)
    y = yield ctx.call_activity(py_f2, input=x)
    z = yield ctx.call_activity(py_f3, input=y)
    try:
        return (yield ctx.call_activity(py_f4, input=z))
    except task.TaskFailedError as e:
        # Compensation goes here; this one reports how far it got.
        return f"{z} (F4 failed: {e})"


# --- Pattern 5: human interaction. Ask for an approval, then race the approval event against a
# durable timer; escalate when nobody answers in time. The timer survives restarts of the worker
# and of the server.

def request_approval(ctx: task.ActivityContext, instance_id: str) -> None:
    print(f"  approval requested for {instance_id}", flush=True)


def process_approval(ctx: task.ActivityContext, _) -> None:
    print("  approved: processing", flush=True)


def escalate(ctx: task.ActivityContext, _) -> None:
    print("  nobody answered: escalating", flush=True)


def py_approval(ctx: task.OrchestrationContext, timeout_seconds: int | None):
    yield ctx.call_activity(request_approval, input=ctx.instance_id)
    decision = ctx.wait_for_external_event("ApprovalEvent")
    deadline = ctx.create_timer(timedelta(seconds=timeout_seconds or 72 * 3600))
    winner = yield task.when_any([decision, deadline])
    if winner == decision:
        if decision.get_result():
            yield ctx.call_activity(process_approval)
            return "approved"
        return "rejected"
    yield ctx.call_activity(escalate)
    return "escalated"


def main():
    host = os.environ.get("DURABLETASK_HOST", "localhost:4001")
    key = os.environ.get("DURABLE_API_KEY")
    metadata = [("authorization", f"Bearer {key}")] if key else None
    w = worker.TaskHubGrpcWorker(host_address=host, metadata=metadata)
    for orchestrator in (py_chaining, py_approval):
        w.add_orchestrator(orchestrator)
    for activity in (py_f1, py_f2, py_f3, py_f4, request_approval, process_approval, escalate):
        w.add_activity(activity)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    w.start()
    print(f"worker connected to {host}; Ctrl-C to stop", flush=True)
    stop.wait()
    w.stop()


if __name__ == "__main__":
    main()

"""Activities: chaining, fan-out/fan-in, failures, retries, timers, custom status, payloads."""

import time
from datetime import timedelta

from durabletask import client, task

from common import Counter, check, completed, equal, finished, new_id, output, poll

calls = Counter()


def plus_one(ctx, x):
    return x + 1


def square(ctx, x):
    return x * x


def fail_always(ctx, message):
    calls.bump(message)
    raise ValueError(message)


def flaky(ctx, key):
    attempt = calls.bump(key)
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} of {key} failed")
    return attempt


def echo(ctx, value):
    return value


def chain(ctx, x):
    for _ in range(10):
        x = yield ctx.call_activity(plus_one, input=x)
    return x


def fan_out(ctx, n):
    results = yield task.when_all([ctx.call_activity(square, input=i) for i in range(1, n + 1)])
    return sum(results)


def caught_failure(ctx, message):
    try:
        yield ctx.call_activity(fail_always, input=message)
    except task.TaskFailedError as e:
        cleaned = yield ctx.call_activity(echo, input="compensated")
        return f"{cleaned}: {e}"
    return "not reached"


def uncaught_failure(ctx, message):
    yield ctx.call_activity(fail_always, input=message)
    return "not reached"


def retried(ctx, key):
    policy = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=300),
                              max_number_of_attempts=3)
    if key.startswith("never"):
        return (yield ctx.call_activity(fail_always, input=key, retry_policy=policy))
    return (yield ctx.call_activity(flaky, input=key, retry_policy=policy))


def sleeper(ctx, seconds):
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.current_utc_datetime - start).total_seconds()


def with_status(ctx, _):
    ctx.set_custom_status("stage1")
    yield ctx.wait_for_external_event("go")
    ctx.set_custom_status({"stage": 2})
    return "done"


def big_echo(ctx, payload):
    echoed = yield ctx.call_activity(echo, input=payload)
    return len(echoed)


def short_chain(ctx, x):
    y = yield ctx.call_activity(plus_one, input=x)
    return (yield ctx.call_activity(plus_one, input=y))


ORCHESTRATORS = [chain, fan_out, caught_failure, uncaught_failure, retried, sleeper,
                 with_status, big_echo, short_chain]
ACTIVITIES = [plus_one, square, fail_always, flaky, echo]


def chaining(c):
    iid = c.schedule_new_orchestration(chain, input=1, instance_id=new_id("chain"))
    state = completed(c, iid)
    equal(output(state), 11, "output")
    equal(state.serialized_input, "1", "stored input")
    equal(state.name, "chain", "name")
    check(state.failure_details is None, "no failure expected")
    kinds = [type(e).__name__ for e in c.get_orchestration_history(iid)]
    for kind in ("ExecutionStartedEvent", "TaskScheduledEvent", "TaskCompletedEvent",
                 "ExecutionCompletedEvent"):
        check(kind in kinds, f"{kind} in the history: {kinds}")
    equal(kinds.count("TaskCompletedEvent"), 10, "one result per activity")


def fan_out_fan_in_100(c):
    iid = c.schedule_new_orchestration(fan_out, input=100, instance_id=new_id("fan"))
    equal(output(completed(c, iid)), sum(i * i for i in range(1, 101)), "sum of squares")


def activity_failure_caught(c):
    iid = c.schedule_new_orchestration(caught_failure, input="boom-caught")
    result = output(completed(c, iid))
    check(result.startswith("compensated: "), f"compensation ran: {result!r}")
    check("boom-caught" in result, f"error message passed through: {result!r}")


def activity_failure_uncaught(c):
    iid = c.schedule_new_orchestration(uncaught_failure, input="kaboom")
    state = finished(c, iid, client.OrchestrationStatus.FAILED)
    details = state.failure_details
    check(details is not None and "kaboom" in details.message, f"failure details: {details}")
    equal(details.error_type, "durabletask.task.TaskFailedError", "error type")
    check(details.stack_trace, "a stack trace is present")


def retry_policies(c):
    key = new_id("flaky")
    iid = c.schedule_new_orchestration(retried, input=key)
    equal(output(completed(c, iid)), 3, "the third attempt succeeds")
    equal(calls.get(key), 3, "attempts")
    key = new_id("never")
    iid = c.schedule_new_orchestration(retried, input=key)
    state = finished(c, iid, client.OrchestrationStatus.FAILED)
    equal(calls.get(key), 3, "attempts before giving up")
    check(key in state.failure_details.message, "the last failure is reported")


def durable_timers(c):
    started = time.monotonic()
    iid = c.schedule_new_orchestration(sleeper, input=1.5)
    waited = output(completed(c, iid))
    check(1.5 <= waited < 10, f"orchestration time advanced by the timer: {waited}")
    check(time.monotonic() - started >= 1.4, "the timer did not fire early")


def custom_status(c):
    iid = c.schedule_new_orchestration(with_status)
    poll("custom status stage1",
         lambda: (s := c.get_orchestration_state(iid)) and s.serialized_custom_status == '"stage1"')
    c.raise_orchestration_event(iid, "go")
    state = completed(c, iid)
    equal(state.get_custom_status(), {"stage": 2}, "final custom status")


def payload_1mib(c):
    payload = "x" * (1024 * 1024)
    iid = c.schedule_new_orchestration(big_echo, input=payload)
    state = completed(c, iid)
    equal(output(state), len(payload), "length echoed back")
    equal(len(state.get_input()), len(payload), "stored input")


def concurrent_100(c):
    ids = [c.schedule_new_orchestration(short_chain, input=i, instance_id=new_id(f"many{i}"))
           for i in range(100)]
    for i, iid in enumerate(ids):
        equal(output(completed(c, iid)), i + 2, f"output of {iid}")


SCENARIOS = [
    ("chaining", chaining),
    ("fan_out_fan_in_100", fan_out_fan_in_100),
    ("activity_failure_caught", activity_failure_caught),
    ("activity_failure_uncaught", activity_failure_uncaught),
    ("retry_policies", retry_policies),
    ("durable_timers", durable_timers),
    ("custom_status", custom_status),
    ("payload_1mib", payload_1mib),
    ("concurrent_100", concurrent_100),
]

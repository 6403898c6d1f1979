"""External events, races, suspend/resume, terminate and the wait RPCs' deadlines."""

import time
from datetime import datetime, timedelta, timezone

from durabletask import client, task

from common import check, completed, equal, finished, new_id, output, poll


def two_events(ctx, _):
    a = yield ctx.wait_for_external_event("A")
    b = yield ctx.wait_for_external_event("B")
    return [a, b]


def late_waiter(ctx, _):
    # The event is raised while this timer runs: it must be kept until the wait below.
    yield ctx.create_timer(timedelta(seconds=1))
    return (yield ctx.wait_for_external_event("Late"))


def race(ctx, timeout):
    event = ctx.wait_for_external_event("Approve")
    timer = ctx.create_timer(timedelta(seconds=timeout))
    winner = yield task.when_any([event, timer])
    return "approved" if winner == event else "timed out"


def waiter(ctx, _):
    return (yield ctx.wait_for_external_event("Go"))


def parent_of_waiter(ctx, child_id):
    return (yield ctx.call_sub_orchestrator(waiter, instance_id=child_id))


ORCHESTRATORS = [two_events, late_waiter, race, waiter, parent_of_waiter]
ACTIVITIES = []


def external_events(c):
    iid = c.schedule_new_orchestration(two_events)
    c.raise_orchestration_event(iid, "A", data="a")  # most likely before the first turn
    c.wait_for_orchestration_start(iid, timeout=30)
    c.raise_orchestration_event(iid, "b", data="b")  # names match without regard to case
    equal(output(completed(c, iid)), ["a", "b"], "events in order")


def event_raised_before_wait(c):
    iid = c.schedule_new_orchestration(late_waiter)
    c.wait_for_orchestration_start(iid, timeout=30)
    c.raise_orchestration_event(iid, "Late", data={"early": True})
    equal(output(completed(c, iid)), {"early": True}, "buffered event")


def when_any_event_vs_timer(c):
    approved = c.schedule_new_orchestration(race, input=30)
    c.raise_orchestration_event(approved, "Approve", data=True)
    timed_out = c.schedule_new_orchestration(race, input=1)
    equal(output(completed(c, approved)), "approved", "event wins")
    equal(output(completed(c, timed_out)), "timed out", "timer wins")


def suspend_resume(c):
    iid = c.schedule_new_orchestration(waiter)
    c.wait_for_orchestration_start(iid, timeout=30)
    c.suspend_orchestration(iid, reason="pause")
    poll("SUSPENDED", lambda: c.get_orchestration_state(iid).runtime_status
         == client.OrchestrationStatus.SUSPENDED)
    c.raise_orchestration_event(iid, "Go", data=42)
    try:
        c.wait_for_orchestration_completion(iid, timeout=2)
        raise AssertionError("a suspended instance completed")
    except TimeoutError:
        pass
    equal(c.get_orchestration_state(iid).runtime_status, client.OrchestrationStatus.SUSPENDED,
          "still suspended")
    c.resume_orchestration(iid, reason="go on")
    equal(output(completed(c, iid)), 42, "output after resume")
    # A resume of an instance that is not suspended is harmless (it must not fail it).
    other = c.schedule_new_orchestration(waiter)
    c.wait_for_orchestration_start(other, timeout=30)
    c.resume_orchestration(other)
    c.raise_orchestration_event(other, "Go", data="fine")
    equal(output(completed(c, other)), "fine", "stray resume ignored")


def terminate(c):
    iid = c.schedule_new_orchestration(waiter)
    c.wait_for_orchestration_start(iid, timeout=30)
    equal(c.get_orchestration_state(iid).runtime_status, client.OrchestrationStatus.RUNNING,
          "running before terminate")
    c.terminate_orchestration(iid, output="stopped by test")
    state = finished(c, iid, client.OrchestrationStatus.TERMINATED)
    equal(state.serialized_output, '"stopped by test"', "termination output")
    c.terminate_orchestration(iid, output="again")  # a finished instance: no-op


def terminate_recursive(c):
    child = new_id("child")
    parent = c.schedule_new_orchestration(parent_of_waiter, input=child)
    poll("child running", lambda: (s := c.get_orchestration_state(child))
         and s.runtime_status == client.OrchestrationStatus.RUNNING, timeout=30)
    c.terminate_orchestration(parent, output="cascade")
    finished(c, parent, client.OrchestrationStatus.TERMINATED)
    finished(c, child, client.OrchestrationStatus.TERMINATED)
    equal(c.purge_orchestration(parent).deleted_instance_count, 2, "parent and child purged")
    check(c.get_orchestration_state(child) is None, "child gone")


def wait_timeouts(c):
    iid = c.schedule_new_orchestration(waiter)
    t0 = time.monotonic()
    try:
        c.wait_for_orchestration_completion(iid, timeout=1)
        raise AssertionError("completed without its event")
    except TimeoutError:
        pass
    check(time.monotonic() - t0 < 5, "the wait ended at its deadline")
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    scheduled = c.schedule_new_orchestration(waiter, start_at=later)
    try:
        c.wait_for_orchestration_start(scheduled, timeout=1)
        raise AssertionError("a scheduled start ran early")
    except TimeoutError:
        pass
    equal(c.get_orchestration_state(scheduled).runtime_status,
          client.OrchestrationStatus.PENDING, "scheduled instance pending")
    check(c.wait_for_orchestration_completion(new_id("missing"), timeout=5) is None,
          "unknown instance")
    for i in (iid, scheduled):
        c.terminate_orchestration(i)
        finished(c, i, client.OrchestrationStatus.TERMINATED)


SCENARIOS = [
    ("external_events", external_events),
    ("event_raised_before_wait", event_raised_before_wait),
    ("when_any_event_vs_timer", when_any_event_vs_timer),
    ("suspend_resume", suspend_resume),
    ("terminate", terminate),
    ("terminate_recursive", terminate_recursive),
    ("wait_timeouts", wait_timeouts),
]

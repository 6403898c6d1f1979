"""Sub-orchestrations, continue-as-new, purge, queries, restart and rewind."""

from datetime import datetime, timedelta, timezone

import grpc
from durabletask import client, task

from common import Counter, check, completed, equal, finished, new_id, output, poll

runs = Counter()


def triple(ctx, x):
    return x * 3


def succeed_once_counted(ctx, key):
    runs.bump("ok-" + key)
    return "ok"


def fail_first_time(ctx, key):
    if runs.bump("flaky-" + key) == 1:
        raise ValueError(f"first run of {key} fails")
    return "recovered"


def child_triple(ctx, x):
    return (yield ctx.call_activity(triple, input=x))


def child_fails(ctx, message):
    raise ValueError(message)


def parent_sum(ctx, n):
    results = yield task.when_all(
        [ctx.call_sub_orchestrator(child_triple, input=i) for i in range(1, n + 1)])
    return sum(results)


def parent_of_failure(ctx, catch):
    try:
        yield ctx.call_sub_orchestrator(child_fails, input="child broke")
    except task.TaskFailedError as e:
        if catch:
            return f"caught: {e}"
        raise
    return "not reached"


def collector(ctx, items):
    item = yield ctx.wait_for_external_event("item")
    items = items + [item]
    if len(items) == 5:
        return items
    ctx.continue_as_new(items, save_events=True)


def echo_input(ctx, value):
    return value


def rewindable(ctx, key):
    a = yield ctx.call_activity(succeed_once_counted, input=key)
    b = yield ctx.call_activity(fail_first_time, input=key)
    return [a, b]


def rewindable_child(ctx, key):
    return (yield ctx.call_activity(fail_first_time, input=key))


def rewindable_parent(ctx, key):
    return (yield ctx.call_sub_orchestrator(rewindable_child, input=key,
                                            instance_id=f"{key}-child"))


def forever(ctx, _):
    yield ctx.wait_for_external_event("never")


ORCHESTRATORS = [child_triple, child_fails, parent_sum, parent_of_failure, collector, echo_input,
                 rewindable, rewindable_child, rewindable_parent, forever]
ACTIVITIES = [triple, succeed_once_counted, fail_first_time]


def sub_orchestration_success(c):
    iid = c.schedule_new_orchestration(parent_sum, input=5)
    equal(output(completed(c, iid)), 3 * 15, "sum over 5 children")
    children = c.get_all_orchestration_states(client.OrchestrationQuery(instance_id_prefix=iid))
    equal(len([s for s in children if s.instance_id != iid]), 5, "children named <parent>:<id>")


def sub_orchestration_failure(c):
    caught = c.schedule_new_orchestration(parent_of_failure, input=True)
    result = output(completed(c, caught))
    check("child broke" in result, f"child failure seen by the parent: {result!r}")
    uncaught = c.schedule_new_orchestration(parent_of_failure, input=False)
    state = finished(c, uncaught, client.OrchestrationStatus.FAILED)
    message = state.failure_details.message
    check(message.startswith("Sub-orchestration task #1 failed:"), f"message: {message!r}")
    check(message.endswith("child broke"), f"child's message passed through: {message!r}")


def continue_as_new(c):
    iid = c.schedule_new_orchestration(collector, input=[])
    for i in range(1, 6):
        c.raise_orchestration_event(iid, "item", data=i)
    state = completed(c, iid)
    equal(output(state), [1, 2, 3, 4, 5], "every event carried over")
    equal(state.get_input(), [1, 2, 3, 4], "input of the last generation")


def purge(c):
    iid = c.schedule_new_orchestration(echo_input, input="p")
    completed(c, iid)
    result = c.purge_orchestration(iid)
    equal(result.deleted_instance_count, 1, "deleted")
    equal(result.is_complete, True, "complete")
    check(c.get_orchestration_state(iid) is None, "purged instance is gone")
    running = c.schedule_new_orchestration(forever)
    c.wait_for_orchestration_start(running, timeout=30)
    equal(c.purge_orchestration(running).deleted_instance_count, 0, "running not purged")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = [c.schedule_new_orchestration(echo_input, input=i) for i in range(3)]
    for i in ids:
        completed(c, i)
    result = c.purge_orchestrations_by(created_time_from=since,
                                       runtime_status=[client.OrchestrationStatus.COMPLETED])
    check(result.deleted_instance_count >= 3, f"purged by filter: {result}")
    check(all(c.get_orchestration_state(i) is None for i in ids), "filtered instances gone")
    check(c.get_orchestration_state(running) is not None, "the running one stays")
    c.terminate_orchestration(running)


def query_with_filters(c):
    prefix = new_id("q")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    done = [c.schedule_new_orchestration(echo_input, input=i, instance_id=f"{prefix}-{i}")
            for i in range(3)]
    for i in done:
        completed(c, i)
    waiting = c.schedule_new_orchestration(forever, input="w", instance_id=f"{prefix}-w")
    c.wait_for_orchestration_start(waiting, timeout=30)

    def query(**kw):
        return c.get_all_orchestration_states(client.OrchestrationQuery(instance_id_prefix=prefix,
                                                                        **kw))
    equal(len(query()), 4, "all by prefix")
    equal(len(query(runtime_status=[client.OrchestrationStatus.COMPLETED])), 3, "completed")
    equal([s.instance_id for s in query(runtime_status=[client.OrchestrationStatus.RUNNING])],
          [waiting], "running")
    equal(len(query(max_instance_count=2)), 4, "paging follows the token")
    equal(len(query(created_time_from=datetime.now(timezone.utc) + timedelta(hours=1))), 0,
          "created in the future")
    with_payloads = query(fetch_inputs_and_outputs=True, runtime_status=[
        client.OrchestrationStatus.COMPLETED])
    equal(sorted(s.get_output() for s in with_payloads), [0, 1, 2], "outputs when asked")
    check(all(s.serialized_input is None for s in query()), "no payloads unless asked")

    seen, token, pages = [], None, 0
    while True:
        page = c.list_instance_ids(runtime_status=[client.OrchestrationStatus.COMPLETED],
                                   completed_time_from=since, page_size=1,
                                   continuation_token=token)
        pages += 1
        seen += page.items
        token = page.continuation_token
        if token is None:
            break
        check(page.items[-1] in token, f"the cursor names the last id: {token}")
    check(set(done) <= set(seen), f"list_instance_ids found {seen}")
    check(pages >= 3, "one id per page")
    c.terminate_orchestration(waiting)


def restart(c):
    iid = c.schedule_new_orchestration(echo_input, input={"n": 1})
    completed(c, iid)
    equal(c.restart_orchestration(iid), iid, "same id")
    equal(output(completed(c, iid)), {"n": 1}, "same output again")
    other = c.restart_orchestration(iid, restart_with_new_instance_id=True)
    check(other != iid, "a new id")
    equal(output(completed(c, other)), {"n": 1}, "output under the new id")
    running = c.schedule_new_orchestration(forever)
    c.wait_for_orchestration_start(running, timeout=30)
    try:
        c.restart_orchestration(running)
        raise AssertionError("restarted a running instance")
    except grpc.RpcError as e:
        equal(e.code(), grpc.StatusCode.FAILED_PRECONDITION, "code")
    c.terminate_orchestration(running)


def rewind(c):
    key = new_id("rw")
    iid = c.schedule_new_orchestration(rewindable, input=key)
    finished(c, iid, client.OrchestrationStatus.FAILED)
    c.rewind_orchestration(iid, reason="fixed")
    equal(output(completed(c, iid)), ["ok", "recovered"], "output after rewind")
    equal(runs.get("ok-" + key), 1, "the activity that succeeded did not run again")
    try:
        c.rewind_orchestration(iid)
        raise AssertionError("rewound a completed instance")
    except grpc.RpcError as e:
        equal(e.code(), grpc.StatusCode.FAILED_PRECONDITION, "code for a completed instance")
    try:
        c.rewind_orchestration(new_id("missing"))
        raise AssertionError("rewound a missing instance")
    except grpc.RpcError as e:
        equal(e.code(), grpc.StatusCode.NOT_FOUND, "code for a missing instance")
    key = new_id("rwp")
    parent = c.schedule_new_orchestration(rewindable_parent, input=key)
    finished(c, parent, client.OrchestrationStatus.FAILED)
    finished(c, f"{key}-child", client.OrchestrationStatus.FAILED)
    c.rewind_orchestration(parent)
    equal(output(completed(c, parent)), "recovered", "parent after rewinding its child")
    poll("child completed", lambda: c.get_orchestration_state(f"{key}-child").runtime_status
         == client.OrchestrationStatus.COMPLETED)
    # A failed child that was purged is created again by the parent's rewind.
    key = new_id("rwg")
    parent = c.schedule_new_orchestration(rewindable_parent, input=key)
    finished(c, parent, client.OrchestrationStatus.FAILED)
    equal(c.purge_orchestration(f"{key}-child").deleted_instance_count, 1, "child purged")
    c.rewind_orchestration(parent)
    equal(output(completed(c, parent)), "recovered", "parent after re-creating its child")


SCENARIOS = [
    ("sub_orchestration_success", sub_orchestration_success),
    ("sub_orchestration_failure", sub_orchestration_failure),
    ("continue_as_new", continue_as_new),
    ("purge", purge),
    ("query_with_filters", query_with_filters),
    ("restart", restart),
    ("rewind", rewind),
]

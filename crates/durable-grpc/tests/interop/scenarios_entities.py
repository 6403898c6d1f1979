"""Durable entities: a Python counter signalled, read, called, locked and queried, and entities
across languages (the Rust sample entity `counter`, the Rust orchestration RustCallsPythonEntity)."""

import json
import time
from datetime import datetime, timedelta, timezone

from durabletask import client, entities

from common import check, completed, equal, finished, new_id, output, poll

EntityId = entities.EntityInstanceId


def py_counter(ctx, value):
    state = ctx.get_state(int, 0)
    op = ctx.operation
    if op == "add":
        ctx.set_state(state + value)
        return state + value
    if op == "set":
        ctx.set_state(value)
        return value
    if op == "get":
        return state
    if op == "delete":
        ctx.set_state(None)
        return state
    if op == "fail":
        ctx.set_state(-999)  # rolled back: a failed operation changes nothing
        raise ValueError("asked to fail")
    raise ValueError(f"no operation {op!r}")


def call_counter(ctx, key):
    counter = EntityId("py_counter", key)
    yield ctx.call_entity(counter, "add", 3)
    added = yield ctx.call_entity(counter, "add", 4)
    got = yield ctx.call_entity(counter, "get")
    try:
        yield ctx.call_entity(counter, "fail")
        failed = None
    except Exception as e:  # the operation's failure arrives as a task failure
        failed = str(e)
    after = yield ctx.call_entity(counter, "get")
    return [added, got, failed is not None and "asked to fail" in failed, after]


def locked_increments(ctx, args):
    key, times = args
    counter = EntityId("py_counter", key)
    for _ in range(times):
        with (yield ctx.lock_entities([counter])):
            value = yield ctx.call_entity(counter, "get")
            yield ctx.call_entity(counter, "set", value + 1)
    return times


def hold_lock(ctx, key):
    with (yield ctx.lock_entities([EntityId("py_counter", key)])):
        yield ctx.wait_for_external_event("release")
    return "released"


def lock_once(ctx, key):
    counter = EntityId("py_counter", key)
    with (yield ctx.lock_entities([counter])):
        return (yield ctx.call_entity(counter, "add", 1))


def py_calls_rust_entity(ctx, key):
    counter = EntityId("counter", key)
    ctx.signal_entity(counter, "add", 5)
    yield ctx.call_entity(counter, "add", 10)
    return (yield ctx.call_entity(counter, "get"))


ORCHESTRATORS = [call_counter, locked_increments, hold_lock, lock_once, py_calls_rust_entity]
ACTIVITIES = []
ENTITIES = [py_counter]


def state_of(c, entity):
    meta = c.get_entity(entity, include_state=True)
    return None if meta is None else json.loads(meta.get_state())


def entity_signal_and_get(c):
    counter = EntityId("py_counter", new_id("sig"))
    equal(c.get_entity(counter), None, "an entity never addressed")
    c.signal_entity(counter, "add", 5)
    c.signal_entity(counter, "add", 6)
    poll("the signals to apply", lambda: state_of(c, counter) == 11, timeout=30)
    meta = c.get_entity(counter, include_state=False)
    equal(meta.includes_state, False, "includes_state")
    equal(meta.get_state(), None, "state without include_state")
    equal(str(meta.id), str(counter), "id")
    # A falsy state is a real state.
    c.signal_entity(counter, "set", 0)
    poll("the state 0", lambda: state_of(c, counter) == 0, timeout=30)
    check(c.get_entity(counter) is not None, "an entity with state 0 exists")
    # Deleting the state makes the entity stateless: it no longer exists.
    c.signal_entity(counter, "delete")
    poll("the delete", lambda: c.get_entity(counter) is None, timeout=30)


def entity_scheduled_signal(c):
    counter = EntityId("py_counter", new_id("later"))
    at = datetime.now(timezone.utc) + timedelta(seconds=4)
    c.signal_entity(counter, "add", 1, signal_time=at)
    equal(c.get_entity(counter), None, "the entity before the signal's time")
    poll("the delayed signal", lambda: state_of(c, counter) == 1, timeout=30)
    check(datetime.now(timezone.utc) >= at, "applied before its time")


def orchestration_calls_entity(c):
    key = new_id("call")
    iid = c.schedule_new_orchestration(call_counter, input=key)
    equal(output(completed(c, iid)), [7, 7, True, 7], "call results")
    equal(state_of(c, EntityId("py_counter", key)), 7, "the state after the failed operation")


def critical_section_no_lost_update(c):
    key = new_id("cs")
    orchestrations, times = 10, 100
    started = time.monotonic()
    ids = [c.schedule_new_orchestration(locked_increments, input=[key, times])
           for _ in range(orchestrations)]
    for iid in ids:
        completed(c, iid, timeout=180)
    elapsed = time.monotonic() - started
    equal(state_of(c, EntityId("py_counter", key)), orchestrations * times, "the count")
    print(f"# {orchestrations * times} locked read-then-set increments from {orchestrations} "
          f"orchestrations in {elapsed:.1f}s", flush=True)


def listed(c, prefix, **query):
    """The entities whose ids start with prefix, stateless ones included."""
    return c.get_all_entities(client.EntityQuery(
        instance_id_starts_with=prefix, include_transient=True, **query))


def lock_released_when_terminated(c):
    key = new_id("term")
    counter = EntityId("py_counter", key)
    holder = c.schedule_new_orchestration(hold_lock, input=key)
    # lockedBy names the orchestration holding the lock.
    poll("the lock", lambda: [e._locked_by for e in listed(c, str(counter))] == [holder],
         timeout=30)
    # A second orchestration asks for the lock and is terminated while its request waits.
    waiting = c.schedule_new_orchestration(lock_once, input=key)
    c.wait_for_orchestration_start(waiting, timeout=30)
    c.terminate_orchestration(waiting)
    finished(c, waiting, client.OrchestrationStatus.TERMINATED)
    # The holder is terminated while it holds the lock.
    c.terminate_orchestration(holder)
    finished(c, holder, client.OrchestrationStatus.TERMINATED)
    # Both were released: a third orchestration gets the entity.
    third = c.schedule_new_orchestration(lock_once, input=key)
    equal(output(completed(c, third, timeout=30)), 1, "the third section's add")
    # The release is a message of its own, applied after the third orchestration completed.
    poll("the lock to be released",
         lambda: [e._locked_by for e in listed(c, str(counter))] == [""], timeout=30)


def entity_query(c):
    prefix = new_id("q")
    for i in range(5):
        c.signal_entity(EntityId("py_counter", f"{prefix}-{i}"), "set", i * 10)
    c.signal_entity(EntityId("py_counter", f"{prefix}-gone"), "delete")
    query = client.EntityQuery(instance_id_starts_with=f"@py_counter@{prefix}",
                               include_state=True, page_size=2)
    def five_with_state():
        found = c.get_all_entities(query)
        return found if len(found) == 5 and all(e.get_state() for e in found) else None

    found = poll("five entities with state", five_with_state, timeout=30)
    equal(sorted(json.loads(e.get_state()) for e in found), [0, 10, 20, 30, 40], "states")
    # The name part of the prefix is matched without regard to case.
    upper = client.EntityQuery(instance_id_starts_with=f"@PY_COUNTER@{prefix}")
    equal(len(c.get_all_entities(upper)), 5, "entities by an upper-case prefix")
    bare = c.get_all_entities(client.EntityQuery(instance_id_starts_with=f"@py_counter@{prefix}",
                                                 include_state=False))
    check(all(e.get_state() is None for e in bare), "states without include_state")
    # The stateless entity is transient: listed only with include_transient.
    poll("the transient entity", lambda: len(listed(c, f"@py_counter@{prefix}")) == 6, timeout=30)
    # Last-modified range: nothing was modified in the future.
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    later = c.get_all_entities(client.EntityQuery(instance_id_starts_with=f"@py_counter@{prefix}",
                                                  last_modified_from=future))
    equal(later, [], "entities modified after an hour from now")


def clean_entity_storage(c):
    # Nothing is orphaned here (ended orchestrations release their locks). An entity whose state
    # was deleted is empty and goes; one with state stays. The SDK's loop over the continuation
    # token must end.
    empty = EntityId("py_counter", new_id("empty"))
    kept = EntityId("py_counter", new_id("kept"))
    c.signal_entity(empty, "add", 1)
    c.signal_entity(empty, "delete")
    c.signal_entity(kept, "add", 2)
    poll("the delete and the add",
         lambda: len(listed(c, str(empty))) == 1 and c.get_entity(empty) is None
         and state_of(c, kept) == 2, timeout=30)
    result = c.clean_entity_storage()
    check(result.empty_entities_removed >= 1,
          f"empty entities removed: {result.empty_entities_removed}")
    equal(result.orphaned_locks_released, 0, "orphaned locks released")
    equal(listed(c, str(empty)), [], "the empty entity after cleaning")
    equal(state_of(c, kept), 2, "the entity with state after cleaning")
    # The removed entity comes back when addressed again.
    c.signal_entity(empty, "add", 4)
    poll("the removed entity's new state", lambda: state_of(c, empty) == 4, timeout=30)


def python_calls_rust_entity(c):
    key = new_id("rs")
    iid = c.schedule_new_orchestration(py_calls_rust_entity, input=key)
    equal(output(completed(c, iid)), 15, "the Rust counter's value")


def rust_calls_python_entity(c):
    # RustCallsPythonEntity signals the Python entity py_counter (add 2), calls it (add 3) and
    # returns its value.
    key = new_id("rcp")
    iid = c.schedule_new_orchestration("RustCallsPythonEntity", input=key)
    equal(output(completed(c, iid)), 5, "the Python counter's value")
    equal(state_of(c, EntityId("py_counter", key)), 5, "the state")


SCENARIOS = [
    ("entity_signal_and_get", entity_signal_and_get),
    ("entity_scheduled_signal", entity_scheduled_signal),
    ("orchestration_calls_entity", orchestration_calls_entity),
    ("critical_section_no_lost_update", critical_section_no_lost_update),
    ("lock_released_when_terminated", lock_released_when_terminated),
    ("entity_query", entity_query),
    ("clean_entity_storage", clean_entity_storage),
    ("python_calls_rust_entity", python_calls_rust_entity),
    ("rust_calls_python_entity", rust_calls_python_entity),
]

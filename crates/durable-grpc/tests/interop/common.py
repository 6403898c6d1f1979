"""Helpers shared by the scenario modules."""

import json
import threading
import time
import uuid

from durabletask import client

# Ids are unique per run, so the suite can run again against the same task hub.
RUN = uuid.uuid4().hex[:8]
TIMEOUT = 60


def new_id(label):
    return f"{label}-{RUN}-{uuid.uuid4().hex[:6]}"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def equal(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def completed(c, instance_id, timeout=TIMEOUT):
    """Waits for the instance to finish and checks it COMPLETED; returns the state."""
    state = c.wait_for_orchestration_completion(instance_id, timeout=timeout)
    check(state is not None, f"{instance_id} does not exist")
    if state.runtime_status != client.OrchestrationStatus.COMPLETED:
        raise AssertionError(
            f"{instance_id} ended {state.runtime_status}: {state.failure_details}")
    return state


def finished(c, instance_id, status, timeout=TIMEOUT):
    state = c.wait_for_orchestration_completion(instance_id, timeout=timeout)
    check(state is not None, f"{instance_id} does not exist")
    equal(state.runtime_status, status, f"status of {instance_id}")
    return state


def output(state):
    return None if state.serialized_output is None else json.loads(state.serialized_output)


def poll(what, predicate, timeout=10.0):
    """Polls until predicate() returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Counter:
    """Counts calls per key; activities run in the worker's threads of this same process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {}

    def bump(self, key):
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def get(self, key):
        with self._lock:
            return self._counts.get(key, 0)

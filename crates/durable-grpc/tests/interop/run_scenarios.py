"""Interop scenarios for a Durable Task sidecar, run with the real durabletask SDK.

Usage:  python run_scenarios.py
Env:    DURABLETASK_HOST   the sidecar address (default localhost:4001)
        DURABLE_API_KEY    sent as 'authorization: Bearer <key>' when set
        INTEROP_ONLY       comma-separated scenario names to run (default: all)
        INTEROP_SKIP       comma-separated scenario names to skip (each printed as SKIP)

The cross-language scenarios need a native Rust worker on the same task hub with the samples of
`durable serve --samples` (F1, F2, Chaining, the entity `counter`) and the orchestrations
RustCallsPython and RustCallsPythonEntity (registered by the Rust integration test). Prints one
line per scenario and ends with `N passed, M failed`; the exit code is non-zero when any scenario
failed.
"""

import logging
import os
import sys
import time
import traceback

from durabletask import client, worker

import scenarios_basic
import scenarios_cross
import scenarios_entities
import scenarios_events
import scenarios_lifecycle

MODULES = [scenarios_basic, scenarios_events, scenarios_lifecycle, scenarios_cross,
           scenarios_entities]


def names(var):
    return {n.strip() for n in os.environ.get(var, "").split(",") if n.strip()}


def quiet_logger(name):
    logger = logging.getLogger(f"interop-{name}")
    logger.setLevel(logging.WARNING)
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    return logger


def main():
    host = os.environ.get("DURABLETASK_HOST", "localhost:4001")
    key = os.environ.get("DURABLE_API_KEY")
    metadata = [("authorization", f"Bearer {key}")] if key else None
    only, skip = names("INTEROP_ONLY"), names("INTEROP_SKIP")

    w = worker.TaskHubGrpcWorker(host_address=host, metadata=metadata, logger=quiet_logger("worker"))
    for module in MODULES:
        for fn in module.ORCHESTRATORS:
            w.add_orchestrator(fn)
        for fn in module.ACTIVITIES:
            w.add_activity(fn)
        for fn in getattr(module, "ENTITIES", []):
            w.add_entity(fn)
    w.start()
    c = client.TaskHubGrpcClient(host_address=host, metadata=metadata, logger=quiet_logger("client"))

    passed = failed = skipped = 0
    started = time.monotonic()
    try:
        for module in MODULES:
            for name, scenario in module.SCENARIOS:
                if (only and name not in only) or name in skip:
                    if name in skip:
                        print(f"SKIP {name}", flush=True)
                        skipped += 1
                    continue
                t0 = time.monotonic()
                try:
                    scenario(c)
                    passed += 1
                    print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
                except Exception as e:  # a failed scenario must not stop the others
                    failed += 1
                    print(f"FAIL {name}: {e!r}", flush=True)
                    traceback.print_exc(file=sys.stderr)
    finally:
        w.stop()
        c.close()
    print(f"# {time.monotonic() - started:.1f}s against {host}", flush=True)
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line, flush=True)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

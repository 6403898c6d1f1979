"""Starts an instance of the example orchestrations and prints its result.

  python start.py chaining [INPUT]          -> start,F1,F2,F3,F4
  python start.py approval --approve        -> approved
  python start.py approval --reject         -> rejected
  python start.py approval --timeout 2      -> escalated (nobody answers within 2 s)
"""

import argparse
import os
import sys

from durabletask import client


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pattern", choices=["chaining", "approval"])
    parser.add_argument("input", nargs="?", default="start")
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    parser.add_argument("--timeout", type=int, default=72 * 3600,
                        help="seconds to wait for a decision (default 72 hours)")
    args = parser.parse_args()

    host = os.environ.get("DURABLETASK_HOST", "localhost:4001")
    key = os.environ.get("DURABLE_API_KEY")
    metadata = [("authorization", f"Bearer {key}")] if key else None
    c = client.TaskHubGrpcClient(host_address=host, metadata=metadata)

    if args.pattern == "chaining":
        instance_id = c.schedule_new_orchestration("py_chaining", input=args.input)
    else:
        instance_id = c.schedule_new_orchestration("py_approval", input=args.timeout)
        if args.approve or args.reject:
            c.raise_orchestration_event(instance_id, "ApprovalEvent", data=args.approve)
    print(f"started {instance_id}", file=sys.stderr)
    state = c.wait_for_orchestration_completion(instance_id, timeout=args.timeout + 60)
    if state.runtime_status != client.OrchestrationStatus.COMPLETED:
        print(f"{state.runtime_status}: {state.failure_details}", file=sys.stderr)
        return 1
    print(state.get_output())
    return 0


if __name__ == "__main__":
    sys.exit(main())

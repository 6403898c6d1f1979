# Writes the seed corpus of fuzz/corpus/ (run from the repository root with the .venv of
# scripts/setup-python, whose durabletask wheel carries the protocol's Python classes).
import json, os, glob
from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import timestamp_pb2, wrappers_pb2
root = 'fuzz/corpus'
def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, name), 'wb').write(data)

# HTTP bodies
for i, b in enumerate(['"start"', '{"a":[1,2,{"b":null}],"c":"\\u00e9\\n"}', '', 'null', '[' * 70 + ']' * 70,
                       '1.5e300', '{"x":"' + '[' * 10 + '"}', '{', '\xff'.encode('latin1').decode('latin1'), ' true ']):
    put('http_body', f'body-{i:02}', b)
# HTTP query strings
for i, q in enumerate(['showInput=false&showHistory=true&showHistoryOutput=true',
        'runtimeStatus=Running,completed&createdTimeFrom=2024-05-01T00:00:00Z&createdTimeTo=2024-05-02T00:00:00+02:00&top=5',
        'instanceIdPrefix=abc&name=Chaining&showInput=true', 'reason=because%20I%20said&restartWithNewInstanceId=false',
        'top=0&runtimeStatus=,,,', 'createdTimeFrom=%FF', 'code=secret&taskHub=x',
        '2024-05-01T00%3A00%3A00.000000Z%7Cabc', 'top=99999999999999999999']):
    put('http_query', f'query-{i:02}', q)
# History rows: each golden history split into turns as the stores keep them
n = 0
for path in sorted(glob.glob('crates/durable/tests/golden/*.json')):
    h = json.load(open(path))['history']
    turn = []
    for e in h:
        if e['eventType'] == 'OrchestratorStarted' and turn:
            put('history_row', f'row-{n:02}', json.dumps(turn, separators=(',', ':'))); n += 1; turn = []
        turn.append(e)
    put('history_row', f'row-{n:02}', json.dumps(turn, separators=(',', ':'))); n += 1
    put('history_row', f'whole-{os.path.basename(path)}', json.dumps(h, separators=(',', ':')))

ts = timestamp_pb2.Timestamp(seconds=1700000000, nanos=5)
sv = wrappers_pb2.StringValue
# Protocol history events
evs = [
  pb.HistoryEvent(eventId=-1, timestamp=ts, orchestratorStarted=pb.OrchestratorStartedEvent()),
  pb.HistoryEvent(eventId=-1, timestamp=ts, executionStarted=pb.ExecutionStartedEvent(name='Chaining', input=sv(value='"x"'),
      orchestrationInstance=pb.OrchestrationInstance(instanceId='i', executionId=sv(value='e')))),
  pb.HistoryEvent(eventId=1, timestamp=ts, taskScheduled=pb.TaskScheduledEvent(name='F1', input=sv(value='1'))),
  pb.HistoryEvent(eventId=-1, timestamp=ts, taskCompleted=pb.TaskCompletedEvent(taskScheduledId=1, result=sv(value='2'))),
  pb.HistoryEvent(eventId=-1, timestamp=ts, taskFailed=pb.TaskFailedEvent(taskScheduledId=1, failureDetails=pb.TaskFailureDetails(errorType='E', errorMessage='m'))),
  pb.HistoryEvent(eventId=2, timestamp=ts, timerCreated=pb.TimerCreatedEvent(fireAt=ts)),
  pb.HistoryEvent(eventId=-1, timestamp=ts, timerFired=pb.TimerFiredEvent(fireAt=ts, timerId=2)),
  pb.HistoryEvent(eventId=-1, timestamp=ts, eventRaised=pb.EventRaisedEvent(name='Approval', input=sv(value='true'))),
  pb.HistoryEvent(eventId=3, timestamp=ts, subOrchestrationInstanceCreated=pb.SubOrchestrationInstanceCreatedEvent(instanceId='c', name='Child')),
  pb.HistoryEvent(eventId=-1, timestamp=ts, executionCompleted=pb.ExecutionCompletedEvent(orchestrationStatus=1, result=sv(value='"done"'))),
  pb.HistoryEvent(eventId=-1, timestamp=ts, executionTerminated=pb.ExecutionTerminatedEvent(input=sv(value='"why"'))),
  pb.HistoryEvent(eventId=-1, timestamp=ts, continueAsNew=pb.ContinueAsNewEvent(input=sv(value='3'))),
]
for i, e in enumerate(evs):
    put('proto_history_event', f'event-{i:02}', e.SerializeToString())
# Requests: first byte picks the kind (REQUEST_KINDS order in durable-grpc's decode.rs)
reqs = [
  (0, pb.CreateInstanceRequest(instanceId='a', name='Chaining', input=sv(value='"x"'), scheduledStartTimestamp=ts,
        orchestrationIdReusePolicy=pb.OrchestrationIdReusePolicy(replaceableStatus=[1, 3]))),
  (1, pb.OrchestratorResponse(instanceId='a', completionToken='0123abcd.o.1', actions=[
        pb.OrchestratorAction(id=1, scheduleTask=pb.ScheduleTaskAction(name='F1', input=sv(value='1'))),
        pb.OrchestratorAction(id=2, createTimer=pb.CreateTimerAction(fireAt=ts)),
        pb.OrchestratorAction(id=3, completeOrchestration=pb.CompleteOrchestrationAction(orchestrationStatus=1, result=sv(value='"ok"')))])),
  (2, pb.ActivityResponse(instanceId='a', taskId=1, result=sv(value='2'), completionToken='0123abcd.a.7')),
  (2, pb.ActivityResponse(instanceId='a', taskId=1, failureDetails=pb.TaskFailureDetails(errorType='E', errorMessage='m'), completionToken='0123abcd.a.8')),
  (3, pb.QueryInstancesRequest(query=pb.InstanceQuery(runtimeStatus=[0, 1], createdTimeFrom=ts, maxInstanceCount=10, instanceIdPrefix=sv(value='a')))),
  (4, pb.ListInstanceIdsRequest(runtimeStatus=[1], pageSize=5, lastInstanceKey=sv(value='2024-01-01T00:00:00Z|a'))),
  (5, pb.PurgeInstancesRequest(purgeInstanceFilter=pb.PurgeInstanceFilter(createdTimeFrom=ts, runtimeStatus=[1, 3]))),
  (6, pb.TerminateRequest(instanceId='a', output=sv(value='{"why":1}'), recursive=True)),
  (7, pb.RaiseEventRequest(instanceId='a', name='Go', input=sv(value='[1,2]'))),
]
for i, (k, m) in enumerate(reqs):
    put('grpc_request', f'request-{i:02}', bytes([k]) + m.SerializeToString())

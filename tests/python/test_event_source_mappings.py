"""Lambda event source mappings for Kinesis streams: CreateEventSourceMapping,
GetEventSourceMapping, ListEventSourceMappings, UpdateEventSourceMapping,
DeleteEventSourceMapping (and tags on a mapping's ARN) with boto3 and the AWS CLI against the
real binary.

The module starts its own server (fresh data directory); the state and restart tests start
two more with `[lambda] mapping_state_delay_ms` set, so that the transitional states
(Creating, Updating, Deleting) last long enough to be seen. With SLUICE_ENDPOINT set, the
tests that need their own server or the data directory are skipped, saying so.

Expected answers come from the Lambda API reference, the botocore model, and answers AWS
gave that users recorded; docs/specs/lambda-compat.md ("Event source mappings") lists the
sources and where sluice's wording is its own.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (ACCOUNT, REGION, Server, _start_server, _stop, make_client, stream_arn,
                      unique_name, wait_active)
from test_lambda import ROLE, create, error_of, lambda_client, make_zip, wait_for_log

HANDLER = '''import base64

def handler(event, context):
    for r in event["Records"]:
        print("got", r["eventSourceARN"], r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]).decode())
    return {"batchItemFailures": []}
'''

UUID_LEN = 36
NOT_FOUND = "The resource you requested does not exist."


# --------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------

def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def mapping_arn(uuid: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"


def wait_state(client, uuid: str, state: str, timeout: float = 15.0) -> dict:
    """Poll GetEventSourceMapping until State is `state` ("gone": until it is not found)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.get_event_source_mapping(UUID=uuid)
        except ClientError as e:
            if state == "gone" and error_of_client(e)[1] == "ResourceNotFoundException":
                return e.response
            raise
        if last["State"] == state:
            return last
        time.sleep(0.05)
    raise AssertionError(f"mapping {uuid} not {state} within {timeout}s; last: {last}")


def wait_settled(client, uuid: str, timeout: float = 15.0) -> dict:
    """Poll GetEventSourceMapping until the mapping is Enabled or Disabled."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = client.get_event_source_mapping(UUID=uuid)
        if last["State"] in ("Enabled", "Disabled"):
            return last
        time.sleep(0.05)
    raise AssertionError(f"mapping {uuid} not settled within {timeout}s; last: {last}")


def error_of_client(e: ClientError) -> tuple[int, str, str]:
    r = e.response
    return (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message", ""))


def strip(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


@pytest.fixture(scope="module")
def esm_server(aws_env, tmp_path_factory):
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield Server(external.rstrip("/"), None, None, None, None)
        return
    srv = _start_server(tmp_path_factory.mktemp("sluice-esm-data"),
                        tmp_path_factory.mktemp("sluice-esm-logs"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def lam(esm_server):
    return lambda_client(esm_server.endpoint)


@pytest.fixture(scope="module")
def lam_unvalidated(esm_server):
    """Without botocore's own checks, so out-of-range values reach the server."""
    return lambda_client(esm_server.endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def kin(esm_server):
    return make_client(esm_server.endpoint)


@pytest.fixture
def stream(kin):
    """Factory: a 1-shard stream, ACTIVE; its ARN."""
    made: list[str] = []

    def make(prefix: str = "esm") -> str:
        name = unique_name(prefix)
        kin.create_stream(StreamName=name, ShardCount=1)
        wait_active(kin, name)
        made.append(name)
        return stream_arn(name)

    yield make
    for name in made:
        try:
            kin.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        except ClientError:
            pass


@pytest.fixture
def function(lam):
    """Factory: a function running HANDLER; its name. Its mappings go at teardown."""
    made: list[str] = []

    def make(prefix: str = "esmfn") -> str:
        name = unique_name(prefix)
        create(lam, name, make_zip({"app.py": HANDLER}))
        made.append(name)
        return name

    yield make
    for name in made:
        for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            try:
                wait_settled(lam, m["UUID"])
                lam.delete_event_source_mapping(UUID=m["UUID"])
                wait_state(lam, m["UUID"], "gone")
            except (ClientError, AssertionError):
                pass
        try:
            lam.delete_function(FunctionName=name)
        except ClientError:
            pass


# --------------------------------------------------------------------------------------
# Create, get, list, update, delete
# --------------------------------------------------------------------------------------

def test_lifecycle_shapes_and_states(lam, stream, function):
    arn = stream()
    fn = function()
    resp = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = resp["UUID"]
    assert len(uuid) == UUID_LEN
    created = strip(resp)
    last_modified = created.pop("LastModified")
    assert created == {
        "UUID": uuid,
        "StartingPosition": "LATEST",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
        "EventSourceArn": arn,
        "FunctionArn": function_arn(fn),
        "LastProcessingResult": "No records processed",
        "State": "Creating",
        "StateTransitionReason": "User action",
        "DestinationConfig": {"OnFailure": {}},
        "MaximumRecordAgeInSeconds": -1,
        "BisectBatchOnFunctionError": False,
        "MaximumRetryAttempts": -1,
        "TumblingWindowInSeconds": 0,
        "FunctionResponseTypes": [],
        "EventSourceMappingArn": mapping_arn(uuid),
    }
    # LastModified is a timestamp (epoch seconds on the wire), now.
    assert abs(last_modified.timestamp() - time.time()) < 60

    got = wait_state(lam, uuid, "Enabled")
    assert got["EventSourceArn"] == arn and got["BatchSize"] == 100

    # List: all, by function (name and ARN), by source, by both.
    listed = lam.list_event_source_mappings()["EventSourceMappings"]
    assert uuid in [m["UUID"] for m in listed]
    for kw in ({"FunctionName": fn}, {"FunctionName": function_arn(fn)}, {"EventSourceArn": arn},
               {"FunctionName": fn, "EventSourceArn": arn}):
        found = lam.list_event_source_mappings(**kw)["EventSourceMappings"]
        assert [m["UUID"] for m in found] == [uuid], kw
    assert lam.list_event_source_mappings(EventSourceArn=stream_arn("no-such-stream"))["EventSourceMappings"] == []

    # Update: 202 Updating, then Enabled with the new settings.
    up = lam.update_event_source_mapping(
        UUID=uuid, BatchSize=7, MaximumBatchingWindowInSeconds=2, ParallelizationFactor=3,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=2, MaximumRecordAgeInSeconds=3600,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::esm-failures"}},
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"partitionKey": ["a"]})}]},
    )
    assert up["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert up["State"] == "Updating"
    got = wait_state(lam, uuid, "Enabled")
    for k, v in {"BatchSize": 7, "MaximumBatchingWindowInSeconds": 2, "ParallelizationFactor": 3,
                 "BisectBatchOnFunctionError": True, "MaximumRetryAttempts": 2,
                 "MaximumRecordAgeInSeconds": 3600, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                 "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:s3:::esm-failures"}},
                 "FilterCriteria": {"Filters": [{"Pattern": '{"partitionKey": ["a"]}'}]}}.items():
        assert got[k] == v, k
    assert got["LastModified"] >= last_modified

    # Clearing: an empty destination and no filters.
    lam.update_event_source_mapping(UUID=uuid, DestinationConfig={"OnFailure": {}}, FilterCriteria={"Filters": []})
    got = wait_state(lam, uuid, "Enabled")
    assert got["DestinationConfig"] == {"OnFailure": {}}
    assert "FilterCriteria" not in got

    # Disable and enable: Disabling / Enabling, then Disabled / Enabled.
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    wait_state(lam, uuid, "Disabled")
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    wait_state(lam, uuid, "Enabled")

    # Delete: 202 Deleting, then gone.
    gone = lam.delete_event_source_mapping(UUID=uuid)
    assert gone["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert gone["State"] == "Deleting" and gone["UUID"] == uuid
    wait_state(lam, uuid, "gone")
    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID=uuid)
    assert error_of(e) == (404, "ResourceNotFoundException", NOT_FOUND)
    for call in (lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=1),
                 lambda: lam.delete_event_source_mapping(UUID=uuid)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == (404, "ResourceNotFoundException", NOT_FOUND)


def test_defaults_and_options_at_create(lam, stream, function):
    arn = stream()
    fn = function()
    resp = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=f"{fn}:$LATEST", StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=1_600_000_000, Enabled=False, TumblingWindowInSeconds=60,
    )
    uuid = resp["UUID"]
    assert resp["StartingPosition"] == "AT_TIMESTAMP"
    assert resp["StartingPositionTimestamp"].timestamp() == 1_600_000_000
    # The qualifier the request named the function with stays in FunctionArn.
    assert resp["FunctionArn"] == function_arn(fn) + ":$LATEST"
    assert resp["TumblingWindowInSeconds"] == 60
    got = wait_state(lam, uuid, "Disabled")
    assert got["StartingPosition"] == "AT_TIMESTAMP"


def test_ranges_at_the_limit_and_one_past(lam, lam_unvalidated, stream, function):
    fn = function()
    top = lam.create_event_source_mapping(
        EventSourceArn=stream(), FunctionName=fn, StartingPosition="TRIM_HORIZON",
        BatchSize=10000, MaximumBatchingWindowInSeconds=300, ParallelizationFactor=10,
        MaximumRecordAgeInSeconds=604800, MaximumRetryAttempts=10000, TumblingWindowInSeconds=900,
    )
    assert (top["BatchSize"], top["MaximumBatchingWindowInSeconds"], top["ParallelizationFactor"],
            top["MaximumRecordAgeInSeconds"], top["MaximumRetryAttempts"], top["TumblingWindowInSeconds"]) \
        == (10000, 300, 10, 604800, 10000, 900)
    bottom = lam.create_event_source_mapping(
        EventSourceArn=stream(), FunctionName=fn, StartingPosition="TRIM_HORIZON",
        BatchSize=1, MaximumBatchingWindowInSeconds=0, ParallelizationFactor=1,
        MaximumRecordAgeInSeconds=-1, MaximumRetryAttempts=-1, TumblingWindowInSeconds=0,
    )
    assert (bottom["BatchSize"], bottom["MaximumRecordAgeInSeconds"], bottom["MaximumRetryAttempts"]) == (1, -1, -1)
    wait_state(lam, bottom["UUID"], "Enabled")
    up = lam.update_event_source_mapping(UUID=bottom["UUID"], MaximumRecordAgeInSeconds=60, MaximumRetryAttempts=0)
    assert (up["MaximumRecordAgeInSeconds"], up["MaximumRetryAttempts"]) == (60, 0)

    arn = stream()
    past = [
        ("BatchSize", 10001, "batchSize", "Member must have value less than or equal to 10000"),
        ("BatchSize", 0, "batchSize", "Member must have value greater than or equal to 1"),
        ("MaximumBatchingWindowInSeconds", 301, "maximumBatchingWindowInSeconds", "Member must have value less than or equal to 300"),
        ("MaximumBatchingWindowInSeconds", -1, "maximumBatchingWindowInSeconds", "Member must have value greater than or equal to 0"),
        ("ParallelizationFactor", 11, "parallelizationFactor", "Member must have value less than or equal to 10"),
        ("ParallelizationFactor", 0, "parallelizationFactor", "Member must have value greater than or equal to 1"),
        ("MaximumRecordAgeInSeconds", 604801, "maximumRecordAgeInSeconds", "Member must have value less than or equal to 604800"),
        ("MaximumRecordAgeInSeconds", -2, "maximumRecordAgeInSeconds", "Member must have value greater than or equal to -1"),
        ("MaximumRetryAttempts", 10001, "maximumRetryAttempts", "Member must have value less than or equal to 10000"),
        ("MaximumRetryAttempts", -2, "maximumRetryAttempts", "Member must have value greater than or equal to -1"),
        ("TumblingWindowInSeconds", 901, "tumblingWindowInSeconds", "Member must have value less than or equal to 900"),
        ("TumblingWindowInSeconds", -1, "tumblingWindowInSeconds", "Member must have value greater than or equal to 0"),
    ]
    for member, value, path, constraint in past:
        with pytest.raises(ClientError) as e:
            lam_unvalidated.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", **{member: value})
        assert error_of(e) == (
            400, "ValidationException",
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: {constraint}",
        ), member
        # Update checks the same.
        with pytest.raises(ClientError) as e:
            lam_unvalidated.update_event_source_mapping(UUID=top["UUID"], **{member: value})
        assert error_of(e)[:2] == (400, "ValidationException"), member

    # MaximumRecordAgeInSeconds: the model allows 0-59, the service does not (AWS's text).
    for value in (0, 59):
        with pytest.raises(ClientError) as e:
            lam_unvalidated.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", MaximumRecordAgeInSeconds=value)
        assert error_of(e) == (400, "InvalidParameterValueException",
                               "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)")

    # FunctionResponseTypes: at most one, ReportBatchItemFailures.
    with pytest.raises(ClientError) as e:
        lam_unvalidated.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", FunctionResponseTypes=["Other"])
    assert error_of(e)[:2] == (400, "ValidationException")
    assert "at 'functionResponseTypes'" in error_of(e)[2]

    # FilterCriteria: 5 filters, each pattern at most 4,096 characters.
    pattern_at_limit = json.dumps({"partitionKey": ["k" * (4096 - 22)]})
    assert len(pattern_at_limit) == 4096
    five = [{"Pattern": json.dumps({"partitionKey": [f"k{i}"]})} for i in range(4)] + [{"Pattern": pattern_at_limit}]
    ok = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                         FilterCriteria={"Filters": five})
    assert len(ok["FilterCriteria"]["Filters"]) == 5
    other_fn = function()
    with pytest.raises(ClientError) as e:
        lam_unvalidated.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=other_fn, StartingPosition="LATEST",
            FilterCriteria={"Filters": five + [{"Pattern": json.dumps({"partitionKey": ["x"]})}]})
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    too_long = json.dumps({"partitionKey": ["k" * (4097 - 22)]})
    with pytest.raises(ClientError) as e:
        lam_unvalidated.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=other_fn, StartingPosition="LATEST",
            FilterCriteria={"Filters": [{"Pattern": too_long}]})
    assert error_of(e)[:2] == (400, "ValidationException")
    assert "at 'filterCriteria.filters.1.member.pattern'" in error_of(e)[2]
    assert "Member must have length less than or equal to 4096" in error_of(e)[2]


def test_list_pages_with_marker(lam, lam_unvalidated, stream, function):
    fn = function()
    made = sorted(
        lam.create_event_source_mapping(EventSourceArn=stream(), FunctionName=fn, StartingPosition="LATEST",
                                        Enabled=False)["UUID"]
        for _ in range(3)
    )
    seen, marker = [], None
    for _ in range(10):
        kw = {"FunctionName": fn, "MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        page = lam.list_event_source_mappings(**kw)
        assert len(page["EventSourceMappings"]) <= 2
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == made
    # boto3's paginator follows NextMarker too.
    pages = lam.get_paginator("list_event_source_mappings").paginate(FunctionName=fn, PaginationConfig={"PageSize": 1})
    assert [m["UUID"] for p in pages for m in p["EventSourceMappings"]] == made
    for bad in (0, 10001):
        with pytest.raises(ClientError) as e:
            lam_unvalidated.list_event_source_mappings(MaxItems=bad)
        assert error_of(e)[:2] == (400, "ValidationException")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

def test_not_found_and_conflict(lam, lam_unvalidated, stream, function):
    arn = stream()
    fn = function()
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=unique_name("nofn"), StartingPosition="LATEST")
    assert error_of(e) == (400, "InvalidParameterValueException", "Function does not exist")
    missing = stream_arn(unique_name("nostream"))
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=missing, FunctionName=fn, StartingPosition="LATEST")
    assert error_of(e) == (400, "InvalidParameterValueException", f"Stream not found: {missing}")
    # Another region's or account's stream is not one of sluice's.
    other = f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/x"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=other, FunctionName=fn, StartingPosition="LATEST")
    assert error_of(e) == (400, "InvalidParameterValueException", f"Stream not found: {other}")
    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID="00000000-0000-4000-8000-000000000000")
    assert error_of(e) == (404, "ResourceNotFoundException", NOT_FOUND)

    # StartingPosition: required for Kinesis, an enum; the timestamp goes with AT_TIMESTAMP.
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn)
    assert error_of(e)[:2] == (400, "InvalidParameterValueException")
    assert "startingPosition" in error_of(e)[2]
    with pytest.raises(ClientError) as e:
        lam_unvalidated.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="EARLIEST")
    assert error_of(e) == (400, "ValidationException",
                           "1 validation error detected: Value 'EARLIEST' at 'startingPosition' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="AT_TIMESTAMP")
    assert error_of(e) == (400, "InvalidParameterValueException", "Need to specify a timestamp")
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                        StartingPositionTimestamp=1_600_000_000)
    assert error_of(e) == (400, "InvalidParameterValueException",
                           "Timestamp only valid with StartingPosition AT_TIMESTAMP")

    first = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST")["UUID"]
    for name in (fn, function_arn(fn)):
        with pytest.raises(ClientError) as e:
            lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON")
        assert error_of(e) == (
            409, "ResourceConflictException",
            f'The event source arn (" {arn} ") and function (" {fn} ") provided mapping already exists. '
            f"Please update or delete the existing mapping with UUID {first}",
        )
    # The same function on another stream, another function on the same stream: fine.
    lam.create_event_source_mapping(EventSourceArn=stream(), FunctionName=fn, StartingPosition="LATEST")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function(), StartingPosition="LATEST")


def test_what_sluice_does_not_do_is_refused(lam, lam_unvalidated, stream, function):
    arn = stream()
    fn = function()

    def refused(**kw) -> str:
        with pytest.raises(ClientError) as e:
            lam_unvalidated.create_event_source_mapping(EventSourceArn=kw.pop("EventSourceArn", arn), FunctionName=fn,
                                                        StartingPosition="LATEST", **kw)
        status, code, message = error_of(e)
        assert (status, code) == (400, "InvalidParameterValueException"), message
        return message

    # On-failure destinations: S3 buckets and (sluice's extension) streams; not SQS or SNS.
    for dest in (f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq", f"arn:aws:sns:{REGION}:{ACCOUNT}:topic"):
        assert refused(DestinationConfig={"OnFailure": {"Destination": dest}}).startswith(
            "sluice does not support SQS queues or SNS topics as on-failure destinations")
    assert refused(DestinationConfig={"OnSuccess": {"Destination": "arn:aws:s3:::b"}}) == \
        "Unsupported DestinationConfig parameter for given event source mapping type."
    missing = stream_arn(unique_name("nodlq"))
    assert refused(DestinationConfig={"OnFailure": {"Destination": missing}}) == f"Stream not found: {missing}"
    # Event sources other than Kinesis streams.
    assert refused(EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q").startswith(
        "sluice supports only Kinesis streams as event sources")
    # Members of other event sources or services.
    for member, value in (("ScalingConfig", {"MaximumConcurrency": 5}), ("Queues", ["q"]), ("Topics", ["t"]),
                          ("KMSKeyArn", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"),
                          ("ProvisionedPollerConfig", {"MinimumPollers": 1}),
                          ("SourceAccessConfigurations", [{"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:000000000000:secret:s"}])):
        assert refused(**{member: value}).startswith(f"sluice does not support {member} on event source mappings"), member
    # MetricsConfig: Kafka's metric types do not apply to a Kinesis source.
    assert refused(MetricsConfig={"Metrics": ["ErrorCount"]}).startswith(
        "Unsupported MetricsConfig metric type ErrorCount for Kinesis event sources")
    # A pattern that is not one.
    assert refused(FilterCriteria={"Filters": [{"Pattern": "{not json"}]}).startswith("Invalid filter pattern definition.")

    # What is accepted: an S3 bucket, a stream of this server, a registered consumer's ARN.
    dlq = stream("dlq")
    resp = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                           DestinationConfig={"OnFailure": {"Destination": dlq}})
    assert resp["DestinationConfig"] == {"OnFailure": {"Destination": dlq}}
    resp = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function(), StartingPosition="LATEST",
                                           MetricsConfig={"Metrics": ["EventCount"]})
    assert lam.get_event_source_mapping(UUID=resp["UUID"])["MetricsConfig"] == {"Metrics": ["EventCount"]}
    kin = make_client(lam.meta.endpoint_url)
    consumer = kin.register_stream_consumer(StreamARN=arn, ConsumerName="esm")["Consumer"]["ConsumerARN"]
    resp = lam.create_event_source_mapping(EventSourceArn=consumer, FunctionName=function(), StartingPosition="LATEST")
    assert resp["EventSourceArn"] == consumer


def test_tags_on_a_mapping(lam, stream, function):
    resp = lam.create_event_source_mapping(EventSourceArn=stream(), FunctionName=function(), StartingPosition="LATEST",
                                           Tags={"team": "data"})
    arn = resp["EventSourceMappingArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "data"}
    lam.tag_resource(Resource=arn, Tags={"env": "dev"})
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "dev"}
    with pytest.raises(ClientError) as e:
        lam.list_tags(Resource=mapping_arn("00000000-0000-4000-8000-000000000000"))
    assert error_of(e)[:2] == (404, "ResourceNotFoundException")


def test_function_metrics_are_exported(lam, esm_server, function):
    import urllib.request

    fn = function()
    resp = lam.invoke(FunctionName=fn, Payload=json.dumps({"Records": []}))
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    text = urllib.request.urlopen(f"{esm_server.endpoint}/metrics", timeout=10).read().decode()
    assert f'sluice_lambda_invocations_total{{function_name="{fn}"}} 1' in text
    assert f'sluice_lambda_duration_seconds_count{{function_name="{fn}"}} 1' in text


# --------------------------------------------------------------------------------------
# States that last, and a restart
# --------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_in_use_states_and_restart(tmp_path, aws_env):
    data = tmp_path / "data"
    data.mkdir()
    for d in ("logs1", "logs2"):
        (tmp_path / d).mkdir()
    srv = _start_server(data, tmp_path / "logs1", extra_env={"SLUICE_LAMBDA_MAPPING_STATE_DELAY_MS": "600000"})
    try:
        c = lambda_client(srv.endpoint)
        k = make_client(srv.endpoint)
        for s in ("a", "b", "c"):
            k.create_stream(StreamName=s, ShardCount=1)
            wait_active(k, s)
        create(c, "fn", make_zip({"app.py": HANDLER}))
        creating = c.create_event_source_mapping(EventSourceArn=stream_arn("a"), FunctionName="fn",
                                                 StartingPosition="TRIM_HORIZON", BatchSize=5)
        disabled = c.create_event_source_mapping(EventSourceArn=stream_arn("b"), FunctionName="fn",
                                                 StartingPosition="LATEST", Enabled=False)
        third = c.create_event_source_mapping(EventSourceArn=stream_arn("c"), FunctionName="fn",
                                              StartingPosition="LATEST")
        uuid = creating["UUID"]
        assert c.get_event_source_mapping(UUID=uuid)["State"] == "Creating"
        with pytest.raises(ClientError) as e:
            c.update_event_source_mapping(UUID=uuid, BatchSize=6)
        assert error_of(e) == (400, "ResourceInUseException",
                               "Cannot update the event source mapping because it is in use.")
        with pytest.raises(ClientError) as e:
            c.delete_event_source_mapping(UUID=uuid)
        assert error_of(e) == (400, "ResourceInUseException",
                               "Cannot delete the event source mapping because it is in use.")
        # The mapping files are there, committed in their transitional state.
        assert (data / "lambda" / "mappings" / f"{uuid}.json").exists()
    finally:
        _stop(srv.proc)
    assert srv.proc.returncode == 0, f"sluice did not exit cleanly on SIGTERM\n{srv.diagnostics()}"

    srv2 = _start_server(data, tmp_path / "logs2")
    try:
        c = lambda_client(srv2.endpoint)
        got = c.get_event_source_mapping(UUID=uuid)
        assert (got["State"], got["BatchSize"], got["StartingPosition"]) == ("Enabled", 5, "TRIM_HORIZON")
        assert c.get_event_source_mapping(UUID=disabled["UUID"])["State"] == "Disabled"
        # With no delay, changes settle at once; a deletion survives the next restart too.
        c.delete_event_source_mapping(UUID=third["UUID"])
        wait_state(c, third["UUID"], "gone")
        assert sorted(m["UUID"] for m in c.list_event_source_mappings()["EventSourceMappings"]) == \
            sorted([uuid, disabled["UUID"]])
    finally:
        _stop(srv2.proc)
    assert srv2.proc.returncode == 0, srv2.diagnostics()


# --------------------------------------------------------------------------------------
# AWS CLI
# --------------------------------------------------------------------------------------

def test_aws_cli_create_event_source_mapping(aws_cli, esm_server, lam, stream, function):
    cli = type(aws_cli)(esm_server.endpoint, aws_cli.env)
    arn = stream()
    fn = function()
    created = cli.run("lambda", "create-event-source-mapping", "--function-name", fn, "--event-source-arn", arn,
                      "--starting-position", "TRIM_HORIZON", "--batch-size", "10",
                      "--maximum-retry-attempts", "3", "--bisect-batch-on-function-error")
    assert created["State"] == "Creating"
    assert (created["BatchSize"], created["MaximumRetryAttempts"], created["BisectBatchOnFunctionError"]) == (10, 3, True)
    assert created["FunctionArn"] == function_arn(fn)
    wait_state(lam, created["UUID"], "Enabled")
    listed = cli.run("lambda", "list-event-source-mappings", "--function-name", fn)
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    deleted = cli.run("lambda", "delete-event-source-mapping", "--uuid", created["UUID"])
    assert deleted["State"] == "Deleting"


# --------------------------------------------------------------------------------------
# End to end (records reach the function): needs sluice-poller's engine.
# --------------------------------------------------------------------------------------

def test_records_reach_the_function(lam, kin, esm_server, stream, function):
    if esm_server.data_dir is None:
        pytest.skip("needs the server's data directory (`sluice logs`); SLUICE_ENDPOINT points elsewhere")
    arn = stream()
    fn = function()
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                           BatchSize=10)["UUID"]
    name = arn.rsplit("/", 1)[1]
    marker = unique_name("rec")
    kin.put_records(StreamName=name, Records=[
        {"PartitionKey": f"pk{i}", "Data": f"{marker}-{i}".encode()} for i in range(3)])
    out = wait_for_log(Path(esm_server.data_dir), fn, f"got {arn} pk2 {marker}-2", timeout=60)
    for i in range(3):
        assert f"got {arn} pk{i} {marker}-{i}" in out
    assert wait_state(lam, uuid, "Enabled")["LastProcessingResult"] == "OK"

"""ProcessRealTimeData: the lab's function (Iteración 2 and 3), for both of its triggers.

- As the stream's trigger (an event source mapping) it gets a Kinesis event, {"Records": [...]},
  each record's data base64-encoded. The lab's example calls json.loads on the data as it comes,
  which fails on AWS as it does on sluice: it is decoded first here.
- As Firehose's data transformation it gets {"records": [...]} and answers every recordId with
  Ok (the transformed record), Dropped or ProcessingFailed.
"""
import base64
import json
from datetime import datetime, timezone


def transform(payload):
    """Keeps clicks, adds their time as text and the page's section; None drops the event."""
    if payload.get('event_type') != 'click':
        return None
    at = datetime.fromtimestamp(payload['timestamp'] / 1000, timezone.utc)
    payload['event_time'] = at.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]
    payload['section'] = payload['page'].strip('/').split('/')[0] or 'home'
    return payload


def lambda_handler(event, context):
    if 'records' in event:  # Firehose data transformation
        out = []
        for record in event['records']:
            try:
                payload = json.loads(base64.b64decode(record['data']))
            except ValueError:
                out.append({'recordId': record['recordId'], 'result': 'ProcessingFailed',
                            'data': record['data']})
                continue
            done = transform(payload)
            if done is None:
                out.append({'recordId': record['recordId'], 'result': 'Dropped',
                            'data': record['data']})
            else:
                line = (json.dumps(done) + '\n').encode()
                out.append({'recordId': record['recordId'], 'result': 'Ok',
                            'data': base64.b64encode(line).decode()})
        return {'records': out}

    for record in event['Records']:  # Kinesis trigger
        payload = json.loads(base64.b64decode(record['kinesis']['data']))
        print(f"Processed record: {payload}")

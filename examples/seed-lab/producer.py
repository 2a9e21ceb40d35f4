"""The lab's producer (Iteración 1), with a few users and pages instead of one, and an end.

    python producer.py [COUNT] [INTERVAL_SECONDS]

With no arguments it runs as the lab's loop does: one event a second until Ctrl-C. The client
is the lab's own line; boto3 takes sluice's address from AWS_ENDPOINT_URL.
"""
import itertools
import json
import sys
import time

import boto3

count = int(sys.argv[1]) if len(sys.argv) > 1 else None
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
pages = ['/home', '/products/42', '/cart', '/checkout']

kinesis = boto3.client('kinesis', region_name='us-east-1')

for i in itertools.count() if count is None else range(count):
    user = f'user{i % 5}'
    data = {
        'event_type': 'view' if i % 4 == 3 else 'click',
        'timestamp': int(time.time() * 1000),
        'user_id': user,
        'page': pages[i % len(pages)]
    }
    kinesis.put_record(
        StreamName='RealTimeDataStream',
        Data=json.dumps(data),
        PartitionKey=user
    )
    time.sleep(interval)

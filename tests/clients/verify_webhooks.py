"""Verifies received deliveries with the PyPI `standardwebhooks` library.

stdin: {"secret": "whsec_…", "messages": [{"headers": {name: value}, "body": "…"}]}
stdout: [true | "<why it failed>", …], one entry per message.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
results = []
for message in request["messages"]:
    try:
        webhook.verify(message["body"], message["headers"])
        results.append(True)
    except WebhookVerificationError as error:
        results.append(str(error) or type(error).__name__)
json.dump(results, sys.stdout)

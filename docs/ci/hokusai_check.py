"""Run the Hokusai connectivity check from CI; fail the job with the cause and the remedy.

    HOKUSAI_PORTAL_URL=https://portal.example HOKUSAI_PORTAL_TOKEN=hkp_… python hokusai_check.py [MODEL_NAME]

The token needs the scopes checks:run and checks:read; the check runs with the API key saved in the portal.
Standard library only; exit 0 when every step passed, 1 when the check failed, 2 when it could not run."""

import json
import os
import sys
import urllib.error
import urllib.request

PORTAL, TOKEN = os.environ["HOKUSAI_PORTAL_URL"].rstrip("/"), os.environ["HOKUSAI_PORTAL_TOKEN"]


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(PORTAL + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=40) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:  # a problem+json: its cause and detail say what to do
        problem = json.load(error)
        print(f"Hokusai Portal refused ({error.code} {problem.get('cause')}): {problem.get('detail')}", file=sys.stderr)
        sys.exit(2)


started = call("POST", "/api/v1/checks", {"kind": "connectivity", "model_name": " ".join(sys.argv[1:2])})
check = call("GET", f"/api/v1/checks/{started['id']}?wait=30")
while not check["finished"]:  # a queue longer than 30 s: ask again
    check = call("GET", f"/api/v1/checks/{started['id']}?wait=30")
for step in check["steps"]:
    print(f"{step['status']:>4}  {step['title']}: {step['cause']} {step['message']}")
    if step["status"] == "fail":
        print(f"      How to fix: {step['remedy']}")
print(f"Check {check['status']} ({check['cause']}): {check['url']}")
sys.exit(0 if check["status"] == "passed" else 1)

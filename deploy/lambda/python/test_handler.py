"""handler.py behind a Lambda function URL, driven by a real ``baton dev``.

A loopback HTTP server plays the function URL: each push Baton sends
(signed as Baton signs every push) becomes a payload-format-2.0 event, as
AWS documents it for function URLs, and goes through ``lambda_handler``;
the adapter's answer (status, headers, body) is what the server gets back.
The workflow runs to completion that way, and every answer is recorded and
checked. Needs the server binary (BATON_BINARY or a cargo build).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from baton import Client
from baton.testing import WorkflowEnvironment, find_baton_binary

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"

os.environ["BATON_SIGNING_SECRET"] = SECRET
sys.path.insert(0, str(Path(__file__).parent))
handler = importlib.import_module("handler")


def function_url_event(
    method: str, path: str, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    """The event a Lambda function URL invokes its function with (payload
    format version 2.0): lower-cased headers, a text body for JSON."""
    now = time.time()
    text = body.decode("utf-8")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": URL_ID,
            "domainName": f"{URL_ID}.lambda-url.us-east-1.on.aws",
            "domainPrefix": URL_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": text,
        "isBase64Encoded": False,
    }


class FunctionUrl:
    """A loopback stand-in for the function URL: HTTP in, event to the
    handler, its result back out; every (push, answer) pair is kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.lock = threading.Lock()
        outer = self

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                event = function_url_event("POST", self.path, dict(self.headers.items()), body)
                result = handler.lambda_handler(event, None)
                with outer.lock:
                    outer.calls.append((event, result))
                raw = result["body"].encode()
                if result["isBase64Encoded"]:
                    raw = base64.b64decode(raw)
                self.send_response(result["statusCode"])
                for k, v in result["headers"].items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def run_order(env: WorkflowEnvironment, url: FunctionUrl, workflow_id: str) -> Any:
    client: Client = env.client
    await env.register_endpoint("orders-py", url.url, SECRET)
    handle = await client.start_workflow(
        handler.ProcessOrder.run,
        handler.Order(id="A-17", amount_cents=4200),
        id=workflow_id,
        task_queue="orders-py",
    )
    result = await asyncio.wait_for(handle.result(), 30)
    return result, await handle.fetch_history()


def test_a_workflow_runs_through_the_function_url_adapter() -> None:
    url = FunctionUrl()

    async def scenario() -> Any:
        env = await WorkflowEnvironment.start_local(binary=find_baton_binary())
        try:
            return await run_order(env, url, "order-A-17")
        finally:
            await env.shutdown()

    try:
        result, history = asyncio.run(scenario())
    finally:
        url.close()
    assert result == {"reservation": "reservation-A-17", "charge": "charge-A-17-4200"}

    # Inline activities (on by default): the one workflow task push runs
    # both activities in the function and commits each step with a signed
    # checkpoint; its answer records nothing more.
    assert [json.loads(event["body"])["type"] for event, _ in url.calls] == ["workflow_task"]
    event, answer = url.calls[0]
    assert event["headers"]["webhook-signature"].startswith("v1,")
    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["content-type"] == "application/json"
    assert answer["isBase64Encoded"] is False
    assert json.loads(answer["body"]) == {"checkpointed": True}
    scheduled = [e for e in history.events if e["event_type"] == "ActivityTaskScheduled"]
    assert [e["attributes"]["activity_type"] for e in scheduled] == ["reserve_stock", "charge_card"]
    assert all(e["attributes"].get("inline") for e in scheduled), scheduled
    completed = [
        e["attributes"]["result"]
        for e in history.events
        if e["event_type"] == "ActivityTaskCompleted"
    ]
    assert completed == ["reservation-A-17", "charge-A-17-4200"]

    # The same push with one body byte changed, or signed with another
    # secret, is refused before any workflow code runs.
    forged = copy.deepcopy(event)
    forged["body"] = forged["body"].replace("A-17", "A-18", 1)
    answer = handler.lambda_handler(forged, None)
    assert answer["statusCode"] == 401, answer
    unsigned = copy.deepcopy(event)
    del unsigned["headers"]["webhook-signature"]
    assert handler.lambda_handler(unsigned, None)["statusCode"] == 401
    # A base64 body (function URLs encode non-text content types) is decoded
    # before the signature check and runs the workflow code: with the server
    # gone, its first checkpoint fails and the push is answered with the
    # task's commands instead.
    encoded = copy.deepcopy(event)
    encoded["body"] = base64.b64encode(event["body"].encode()).decode()
    encoded["isBase64Encoded"] = True
    again = handler.lambda_handler(encoded, None)
    assert again["statusCode"] == 200
    commands = json.loads(again["body"])["commands"]
    assert [c["command_type"] for c in commands] == ["ScheduleActivityTask"]
    assert commands[0]["attributes"]["activity_type"] == "reserve_stock"

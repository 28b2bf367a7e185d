"""Slack's Socket Mode side, added to the fake Web API: apps.connections.open and the WebSocket.

Slack pushes each request as an envelope over the socket and waits for the
app to acknowledge it with the same ``envelope_id`` (and any response payload).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from .slack import Call, FakeSlack

__all__ = ["FakeSlackWithSockets"]


class FakeSlackWithSockets(FakeSlack):
    """FakeSlack that also accepts Socket Mode connections made with ``app_token``."""

    def __init__(self, *args: Any, app_token: str = "xapp-1-test", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app_token = app_token
        self.sockets: list[web.WebSocketResponse] = []
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the app's acknowledgement

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)  # before the Web API's catch-all route
        app.router.add_get("/socket", self._socket)
        for route in super()._app().router.routes():
            app.router.add_route(route.method, route.resource.canonical, route.handler)  # type: ignore[union-attr]
        return app

    async def _open(self, request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == f"Bearer {self.app_token}"
        answer = (
            {"ok": True, "url": f"ws://127.0.0.1:{self.base_url.rsplit(':', 1)[1]}/socket"}
            if ok
            else {"ok": False, "error": "invalid_auth"}
        )
        self.calls.append(Call("apps.connections.open", {}, 200, answer))
        await self._notify()
        return web.json_response(answer)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "connection_info": {"app_id": "A0TEST"},
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
            }
        )
        self.sockets.append(ws)
        await self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data
                        await self._notify()
        finally:
            self.sockets.remove(ws)
        return ws

    async def push(self, kind: str, payload: dict[str, Any]) -> str:
        """Send one envelope (``slash_commands``, ``interactive``, ``events_api``); return its id."""
        envelope_id = str(uuid.uuid4())
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

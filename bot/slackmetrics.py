"""Slack's Web API client, counting each call by method and outcome for ``/metrics``.

Every method of ``AsyncWebClient`` goes through ``api_call``, so one override
sees them all (slack_sdk's own retries happen inside it, and count once).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics
from handlers.slack_errors import slack_error_code

__all__ = ["MeteredWebClient"]


class MeteredWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` whose calls are counted: ``ok``, Slack's error code, or ``unreachable``."""

    def __init__(self, *, metrics: Metrics | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        if self._metrics is None:
            return await super().api_call(api_method, **kwargs)
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            self._metrics.observe_slack(api_method, slack_error_code(error))
            raise
        except (OSError, TimeoutError, aiohttp.ClientError):
            self._metrics.observe_slack(api_method, "unreachable")
            raise
        except Exception:
            self._metrics.observe_slack(api_method, "error")
            raise
        self._metrics.observe_slack(api_method, "ok")
        return response

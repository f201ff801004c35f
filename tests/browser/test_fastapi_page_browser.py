"""The FastAPI example's page in Chromium: the answer streams in and the run tree fills, over SSE and WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import wait_until
from test_fastapi_example import QUESTION, example, idle, serve

from nbcallbacks.demo import agent

pytestmark = pytest.mark.browser


def test_the_page_shows_the_answer_and_the_run_tree(context: Any) -> None:
    app = example.create_app(agent(token_delay=0.005))
    with serve(app) as address:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"http://{address}/")
        assert page.locator("#q").input_value() == QUESTION
        for button in ("Ask (SSE)", "Ask (WebSocket)"):
            page.get_by_role("button", name=button).click()
            page.wait_for_function(
                "document.querySelector('#tree li')?.textContent.includes('LangGraph (chain) ok')", timeout=60_000
            )
            answer = page.locator("#answer").text_content() or ""
            assert "Paris" in answer
            assert "51" in answer
            tree = page.locator("#tree li").all_text_contents()
            assert [line.split(" (")[0].strip() for line in tree][:3] == ["LangGraph", "agent", "DemoChatModel"]
            assert all(line.rstrip().endswith(" s") for line in tree)  # every run ended, with its duration
        page.close()
        wait_until(lambda: idle(app), "the requests to leave nothing behind", timeout=60)
    assert errors == []

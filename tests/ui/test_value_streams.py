"""The value streams page: streams side by side, the step that holds delivery back."""

from __future__ import annotations

import pytest

from tests.api import flow_history
from tests.api.test_value_streams import _assign
from tests.ui.conftest import html


@pytest.fixture
def history(engineer, marketing, clock, ui_engineer):
    ids = flow_history.build(engineer, marketing, clock)
    for key, name in (("checkout", "Checkout"), ("platform", "Platform")):
        response = ui_engineer.post("/ui/value-streams", {"key": key, "name": name})
        assert response.status_code == 303
    _assign(engineer, ids["checkout"], "checkout")
    _assign(engineer, ids["platform"], "platform")
    return ids


def test_page__streams_side_by_side_and_what_holds_back(history, ui_viewer):
    page = html(ui_viewer.get("/ui/value-streams"))
    assert 'id="stream-checkout"' in page and 'id="stream-platform"' in page
    assert "Holding delivery back:</strong> platform, at general ramp (median 13.0 days)" in page
    assert "Bottleneck per value stream" in page  # the chart
    assert "New value stream" not in page  # viewers read only


def test_create__bad_key__422_kept(history, ui_engineer):
    response = ui_engineer.post("/ui/value-streams", {"key": "Bad Key", "name": "x"})
    assert response.status_code == 422 and 'value="Bad Key"' in html(response)
    again = ui_engineer.post("/ui/value-streams", {"key": "checkout", "name": "again"})
    assert again.status_code == 409


def test_objective_form__chooses_a_stream(history, ui_engineer, engineer):
    response = ui_engineer.post("/ui/okrs/objectives", {"title": "Grow", "period": "2026-Q4",
                                                        "owner": "growth", "value_stream": "checkout"})  # fmt: skip
    assert response.status_code == 303
    grown = [o for o in engineer.get("/api/v1/objectives").json["items"] if o["title"] == "Grow"]
    assert grown[0]["value_stream"] == "checkout"
    assert "value stream checkout" in html(ui_engineer.get("/ui/okrs"))


def test_viewer_cannot_create(ui_viewer):
    assert ui_viewer.post("/ui/value-streams", {"key": "x", "name": "X"}).status_code == 403

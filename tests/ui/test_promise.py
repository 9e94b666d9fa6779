"""The promise board page: marketing lands on what is safe to announce, with evidence."""

from __future__ import annotations

import pytest

from tests.api import flow_history
from tests.ui.conftest import html


@pytest.fixture
def history(engineer, marketing, clock):
    return flow_history.build(engineer, marketing, clock)


def test_page__proven_feature_with_evidence__nothing_unfinished(history, ui_marketing):
    page = html(ui_marketing.get("/ui/promise-board"))
    assert "Safe to promise" in page and 'id="promise-flag-c"' in page
    assert "16.0 days" in page and "0 of 4" in page
    for unfinished in ("flag-a", "flag-b", "flag-d", "flag-e"):  # released, defect, off, debt
        assert f'id="promise-{unfinished}"' not in page
    assert "/ui/promise-board.csv" in page and "/ui/promise-board.atom" in page


def test_page__stricter_rules__empty_with_the_reason(history, ui_marketing):
    page = html(ui_marketing.get("/ui/promise-board?min_days=30"))
    assert "Nothing is safe to promise yet" in page and "for 30 days" in page


def test_page__bad_filter__422_names_it(history, ui_marketing):
    response = ui_marketing.get("/ui/promise-board?min_days=-3")
    assert response.status_code == 422
    assert "Must be greater than or equal to 0" in html(response)


def test_exports__csv_and_atom_with_the_session(history, ui_viewer):
    csv = ui_viewer.get("/ui/promise-board.csv")
    assert csv.mimetype == "text/csv" and "flag-c" in csv.get_data(as_text=True)
    atom = ui_viewer.get("/ui/promise-board.atom")
    assert atom.mimetype == "application/atom+xml"
    assert "urn:flagsvc:promise:production:flag-c" in atom.get_data(as_text=True)
    assert ui_viewer.get("/ui/promise-board.rss").status_code == 404

"""Form bodies limited before parsing: field counts everywhere, a small body on sign-in."""

from __future__ import annotations

import io

from tests.ui.conftest import UiClient

FORM = "application/x-www-form-urlencoded"


def test_sign_in__form_bomb_of_empty_fields__413_before_parsing(client):
    # Given the body in miniature: thousands of empty fields, no token, no CSRF
    body = b"a=&" * 5_000
    # When it is posted to the public sign-in form
    response = client.post("/ui/sign-in", data=body, content_type=FORM)
    # Then 413: too large, not parsed (a parsed one is a 400 for its missing CSRF token)
    assert response.status_code == 413
    assert "at most 1000 fields" in response.get_data(as_text=True)


def test_sign_in__body_over_16_kib__413_naming_the_small_limit(client):
    body = b"token=" + b"x" * (17 * 2**10)
    response = client.post("/ui/sign-in", data=body, content_type=FORM)
    assert response.status_code == 413
    assert "16 KiB" in response.get_data(as_text=True)


def test_sign_in__ordinary_form__still_parsed(client):
    response = client.post("/ui/sign-in", data={"token": "nope", "next": "/ui/"})
    assert response.status_code == 400  # its CSRF token is missing: it was read


def test_signed_in_form__fields_over_the_limit__413(client, secrets):
    # a member paste is one field; a thousand fields is nobody's form
    ui = UiClient(client, secrets["engineer"])
    body = f"csrf_token={ui.csrf_token()}&".encode() + b"&".join(b"k%d=" % i for i in range(1_001))
    response = client.post("/ui/cohorts", data=body, content_type=FORM)
    assert response.status_code == 413


def test_multipart__parts_over_the_limit__413(client):
    data = {f"f{i}": "" for i in range(1_001)}
    data["file"] = (io.BytesIO(b"x"), "x.csv")
    response = client.post("/ui/sign-in", data=data, content_type="multipart/form-data")
    assert response.status_code == 413

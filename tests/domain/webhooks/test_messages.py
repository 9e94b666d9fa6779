import json

from flagsvc.domain.webhooks import messages


def _message(**data):
    return messages.envelope("evt_1", "flag.killed", "2026-10-01T09:00:00+00:00", data)


def test_json_body__the_envelope_with_its_event_id():
    sent = json.loads(messages.body("json", _message(flag="f", environment="production")))
    assert sent["id"] == "evt_1" and sent["type"] == "flag.killed"
    assert sent["data"] == {"flag": "f", "environment": "production"}


def test_slack_body__one_text_line_naming_the_flag():
    sent = json.loads(
        messages.body(
            "slack", _message(flag="f", flag_name="Fast checkout", environment="production")
        )
    )
    assert sent == {"text": "*Fast checkout*: the kill switch was pulled in production."}


def test_slack_body__control_characters_in_names__escaped():
    hostile = _message(flag="f", flag_name="<!channel> <https://evil.example|docs> & co")
    text = json.loads(messages.body("slack", hostile))["text"]
    assert "<!channel>" not in text and "<https://" not in text
    assert "&lt;!channel&gt;" in text and "&amp; co" in text

from flagsvc.domain.webhooks import signing

SECRET = "whsec_abc"
BODY = b'{"id":"evt_1"}'


def test_header__verifies_with_the_same_secret_body_and_a_fresh_timestamp():
    header = signing.header(SECRET, 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify(SECRET, header, BODY, now=1_700_000_100)


def test_verify__other_secret_body_or_old_timestamp__refused():
    header = signing.header(SECRET, 1_700_000_000, BODY)
    assert not signing.verify("whsec_other", header, BODY, now=1_700_000_000)
    assert not signing.verify(SECRET, header, BODY + b" ", now=1_700_000_000)
    assert not signing.verify(SECRET, header, BODY, now=1_700_000_000 + 301)


def test_verify__malformed_headers__refused_not_raised():
    for header in ("", "t=x,v1=00", "v1=00", "t=1,t=2,v1=00", "garbage"):
        assert not signing.verify(SECRET, header, BODY, now=1)


def test_signature__is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"12." + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(SECRET, 12, BODY) == expected


def test_new_secret__prefixed_and_random():
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and first != second and len(first) > 40


def test_docs_snippet__verifies_what_flagsvc_signs():
    import re
    import time
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "webhooks.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", docs, flags=re.S)
    assert snippet is not None
    scope: dict[str, object] = {}
    exec(snippet.group(1), scope)  # the receiver's code exactly as documented
    verify = scope["verify"]
    now = int(time.time())
    assert verify(SECRET, signing.header(SECRET, now, BODY), BODY)  # type: ignore[operator]
    assert not verify(SECRET, signing.header(SECRET, now - 600, BODY), BODY)  # type: ignore[operator]
    assert not verify("whsec_other", signing.header(SECRET, now, BODY), BODY)  # type: ignore[operator]

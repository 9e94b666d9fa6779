import pytest

from flagsvc.domain.webhooks import addresses


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://x",
        "http://",
        "https://u:p@example.com/",
    ],
)
def test_url_problem__not_http_or_without_host_or_with_credentials__refused(url):
    assert addresses.url_problem(url) is not None


def test_url_problem__http_and_https__accepted():
    assert addresses.url_problem("https://hooks.example.com/a?b=c") is None
    assert addresses.url_problem("http://10.0.0.1:8080/") is None  # addresses: when sending


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "::1",
     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1"],
)  # fmt: skip
def test_address_problem__private_loopback_link_local__refused_unless_allowed(address):
    assert addresses.address_problem(address, allow_private=False) is not None
    assert addresses.address_problem(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "::"])
def test_address_problem__not_unicast__refused_even_when_private_allowed(address):
    assert addresses.address_problem(address, allow_private=True) is not None


def test_address_problem__public__accepted():
    assert addresses.address_problem("93.184.216.34", allow_private=False) is None
    assert addresses.address_problem("2606:4700::1111", allow_private=False) is None

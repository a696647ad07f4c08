"""Which of the host's variables a local task sees: proxies only when the operator lists them."""

from __future__ import annotations

from core.settings import ExecutorSettings
from scheduler.executors.environment import host_variables

HOST = {
    "HOME": "/home/conveyor",
    "HTTPS_PROXY": "http://user:pw@proxy.internal:3128",
    "https_proxy": "http://user:pw@proxy.internal:3128",
    "HTTP_PROXY": "http://user:pw@proxy.internal:3128",
    "NO_PROXY": "localhost",
    "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    "CONVEYOR_DATABASE__URL": "postgresql://secret@db/conveyor",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
}


def test_by_default_no_proxy_variable_reaches_a_task() -> None:
    assert ExecutorSettings().pass_env == ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
    assert host_variables(HOST, ExecutorSettings().pass_env) == {
        "HOME": "/home/conveyor",
        "SSL_CERT_FILE": "/etc/ssl/cert.pem",
    }


def test_a_proxy_variable_listed_in_pass_env_reaches_a_task() -> None:
    assert host_variables(HOST, ("HTTPS_PROXY", "NO_PROXY")) == {
        "HOME": "/home/conveyor",
        "HTTPS_PROXY": "http://user:pw@proxy.internal:3128",
        "NO_PROXY": "localhost",
    }

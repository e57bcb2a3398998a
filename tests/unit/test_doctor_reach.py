"""``dlenv doctor`` asks the index, the Debian mirrors and the registry through the configured
path (proxy, NO_PROXY, CA bundle): a local server on 127.0.0.1 and a proxy that is down."""

from __future__ import annotations

import http.server
import json
import threading

from dlenv.doctor import HostFacts, diagnose, reach
from tests.conftest import free_port


def test_each_endpoint_is_asked_through_the_proxy_that_applies_to_it(tmp_path):
    (tmp_path / "v2").mkdir()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port, down = httpd.server_address[1], free_port()
    try:
        seen = reach({"UV_INDEX_URL": f"http://127.0.0.1:{port}/simple",
                      "DLENV_DEBIAN_MIRROR": f"http://localhost:{port}/debian",
                      "DLENV_DEBIAN_SECURITY_MIRROR": f"http://127.0.0.1:{port}/security",
                      "DLENV_PUSH_TO": f"127.0.0.1:{port}/team",
                      "HTTP_PROXY": f"http://user:secret@127.0.0.1:{down}",
                      "NO_PROXY": "127.0.0.1"}, None)
    finally:
        httpd.shutdown()
        httpd.server_close()
    by_name = {what: (url, proxy, said) for what, url, proxy, said in seen}
    assert by_name["python index"] == (f"http://127.0.0.1:{port}/simple/", "", "HTTP 404")
    assert by_name["registry"] == (f"http://127.0.0.1:{port}/v2/", "", "HTTP 200")
    _, proxy, said = by_name["debian mirror"]  # localhost is not in NO_PROXY
    assert proxy == f"http://127.0.0.1:{down}" and not said.startswith("HTTP")
    assert "secret" not in repr(seen)
    checks = {c.id: c for c in diagnose(HostFacts(reached=seen))}
    assert checks["reach registry"].status == "ok"
    mirror = checks["reach debian mirror"]
    assert mirror.status == "warn" and f"through the proxy http://127.0.0.1:{down}" in \
        mirror.summary and "HTTPS_PROXY" in (mirror.fix or "")


def test_recorded_facts_without_probes_give_no_reach_checks():
    assert not [c for c in diagnose(HostFacts()) if c.id.startswith("reach")]
    again = HostFacts.from_json(HostFacts(reached=(("registry", "u", "", "HTTP 401"),)).to_json())
    assert [c.status for c in diagnose(again) if c.id == "reach registry"] == ["ok"]


def test_before_a_cuda_container_only_the_gpu_facts_are_asked():
    from pathlib import Path

    from dlenv.doctor import gather_gpu

    record = json.loads((Path(__file__).resolve().parent.parent / "fixtures/h200/doctor.json")
                        .read_text())["facts"]
    asked = []

    def run(argv):
        asked.append(argv[0])
        return 0, record["nvidia_smi"], ""

    facts = gather_gpu('{"Runtimes": {"nvidia": {}, "runc": {}}}', run)
    assert asked == ["nvidia-smi"]  # no engine, buildx or CA bundle: Docker's info is given
    checks = {c.id: c.status for c in diagnose(facts)}
    assert checks["gpu"] == "ok" and checks["toolkit"] == "ok"

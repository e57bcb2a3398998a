"""`dlenv scan`: locked packages against real advisories' facts in the OSV schema
(tests/fixtures/osv: requests, urllib3, Pillow, and Debian's DSA-5514-1 for glibc), each
ecosystem's version ordering, severities scored from CVSS vectors, the ignore file with its
expiry dates, and the JSON and SARIF reports."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from dlenv.audit.scan import (
    Package,
    apply_ignores,
    failing,
    in_range,
    match,
    parse_ignores,
    sarif,
)
from dlenv.errors import SpecError
from dlenv.lock import read_lock, write_lock
from dlenv.workflows.scan import read_records, scan
from tests.conftest import run_dlenv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OSV = FIXTURES / "osv"
TODAY = dt.date(2026, 11, 23)


def found(packages, release="12"):
    return sorted((f.id, f.package.shown, f.package.version)
                  for record in read_records(OSV) for f in match(record, packages, release))


def test_every_advisory_is_found_for_affected_versions_and_none_for_patched_ones():
    old = [Package("PyPI", "requests", "2.25.1", "requests"),
           Package("PyPI", "urllib3", "1.26.4", "urllib3"),
           Package("PyPI", "urllib3", "2.0.5", "urllib3"),
           Package("PyPI", "pillow", "9.0.0", "Pillow"),
           Package("Debian", "glibc", "2.36-9+deb12u1", "libc6")]
    assert found(old) == [
        ("DSA-5514-1", "libc6", "2.36-9+deb12u1"),
        ("GHSA-3f63-hfp8-52jq", "Pillow", "9.0.0"),
        ("GHSA-j8r2-6x86-q33q", "requests", "2.25.1"),
        ("GHSA-v845-jxx5-vc9f", "urllib3", "1.26.4"),
        ("GHSA-v845-jxx5-vc9f", "urllib3", "2.0.5")]
    patched = [Package("PyPI", "requests", "2.31.0", "requests"),
               Package("PyPI", "urllib3", "1.26.17", "urllib3"),
               Package("PyPI", "urllib3", "2.0.6", "urllib3"),
               Package("PyPI", "pillow", "10.2.0", "Pillow"),
               Package("PyPI", "requests", "2.2.1", "requests"),  # before it was introduced
               Package("Debian", "glibc", "2.36-9+deb12u3", "libc6")]
    assert found(patched) == []
    # bullseye's fix is not bookworm's: 2.31-13+deb11u7 is fixed only on Debian 11
    assert found([Package("Debian", "glibc", "2.31-13+deb11u6", "libc6")], "11") == [
        ("DSA-5514-1", "libc6", "2.31-13+deb11u6")]
    assert found([Package("Debian", "glibc", "2.31-13+deb11u7", "libc6")], "11") == []


@pytest.mark.parametrize(("ecosystem", "version", "events", "affected"), [
    # Debian: an epoch outranks any upstream version; "~" sorts before anything
    ("Debian", "1:1.0-1", [{"introduced": "0"}, {"fixed": "2.0-1"}], False),
    ("Debian", "2.0-1", [{"introduced": "0"}, {"fixed": "1:1.0-1"}], True),
    ("Debian", "3.0.11-1~deb12u2", [{"introduced": "0"}, {"fixed": "3.0.11-1"}], True),
    ("Debian", "3.0.11-1+deb12u1", [{"introduced": "0"}, {"fixed": "3.0.11-1"}], False),
    ("Debian", "1.0-1+b1", [{"introduced": "0"}, {"fixed": "1.0-1"}], False),
    # PEP 440: a pre-release is before its release, a post-release after it
    ("PyPI", "2.31.0rc1", [{"introduced": "0"}, {"fixed": "2.31.0"}], True),
    ("PyPI", "2.31.0.post1", [{"introduced": "0"}, {"fixed": "2.31.0"}], False),
    ("PyPI", "2.31", [{"introduced": "0"}, {"fixed": "2.31.0"}], False),  # 2.31 == 2.31.0
    # last_affected includes its version; two intervals
    ("PyPI", "1.5", [{"introduced": "1.0"}, {"last_affected": "1.5"}], True),
    ("PyPI", "1.5.1", [{"introduced": "1.0"}, {"last_affected": "1.5"}], False),
    ("PyPI", "2.5", [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"},
                     {"fixed": "4.0"}], False),
    ("PyPI", "3.5", [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"},
                     {"fixed": "4.0"}], True),
    ("PyPI", "not a version", [{"introduced": "0"}], False),
])
def test_versions_are_ordered_as_each_ecosystem_orders_them(ecosystem, version, events,
                                                            affected):
    assert in_range(ecosystem, version, events) is affected


def test_severities_come_from_the_cvss_vectors_else_the_databases_word():
    records = {r["id"]: r for r in read_records(OSV)}
    packages = [Package("PyPI", "requests", "2.25.1", "requests"),
                Package("PyPI", "pillow", "9.0.0", "Pillow"),
                Package("Debian", "glibc", "2.36-9", "libc6")]
    by_id = {f.id: f for r in records.values() for f in match(r, packages, "12")}
    assert (by_id["GHSA-j8r2-6x86-q33q"].severity, by_id["GHSA-j8r2-6x86-q33q"].score) == (
        "medium", 6.1)
    assert (by_id["GHSA-3f63-hfp8-52jq"].severity, by_id["GHSA-3f63-hfp8-52jq"].score) == (
        "high", 8.1)
    assert by_id["DSA-5514-1"].severity == "unknown"  # Debian's record states none
    assert by_id["DSA-5514-1"].aliases == ("CVE-2023-4911",)
    assert by_id["DSA-5514-1"].fixed == ("2.36-9+deb12u3",)  # bookworm's fix, not bullseye's
    no_vector = {**records["GHSA-j8r2-6x86-q33q"], "severity": []}
    assert match(no_vector, packages)[0].severity == "medium"  # GitHub's MODERATE
    assert match({**no_vector, "withdrawn": "2024-01-01T00:00:00Z"}, packages) == []
    assert [f.id for f in failing(by_id.values(), "high")] == ["GHSA-3f63-hfp8-52jq"]
    assert failing(by_id.values(), None) == []


IGNORES = """
[[ignore]]
id = "CVE-2023-32681"
reason = "no proxy with credentials in the URL is used anywhere"
expires = 2027-01-31

[[ignore]]
id = "GHSA-3f63-hfp8-52jq"
reason = "ImageMath.eval is never called"
expires = 2026-10-01
"""


def test_an_ignore_entry_needs_a_reason_and_an_expiry_and_an_expired_one_fails():
    ignores = parse_ignores(tomllib.loads(IGNORES), "dlenv.scan-ignore.toml")
    packages = [Package("PyPI", "requests", "2.25.1", "requests"),
                Package("PyPI", "pillow", "9.0.0", "Pillow")]
    findings = [f for r in read_records(OSV) for f in match(r, packages)]
    marked, expired = apply_ignores(findings, ignores, TODAY)
    by_id = {f.id: f for f in marked}
    assert by_id["GHSA-j8r2-6x86-q33q"].ignored.startswith("no proxy")  # by its CVE alias
    assert by_id["GHSA-3f63-hfp8-52jq"].ignored is None  # expired: not covered any more
    assert [e.id for e in expired] == ["GHSA-3f63-hfp8-52jq"]
    assert [f.id for f in failing(marked, "medium")] == ["GHSA-3f63-hfp8-52jq"]
    for bad, key in [('[[ignore]]\nid = "CVE-2023-1"\nexpires = 2027-01-01\n', "reason"),
                     ('[[ignore]]\nid = "CVE-2023-1"\nreason = "long enough words"\n',
                      "expires"),
                     ('[[ignore]]\nid = "CVE-2023-1"\nreason = "long enough words"\n'
                      'expires = "2027-01-01"\n', "expires"),
                     ('[[ignore]]\nid = "x y"\nreason = "long enough words"\n'
                      'expires = 2027-01-01\n', "id"),
                     ('[[ignore]]\nid = "CVE-2023-1"\nreason = "long enough words"\n'
                      'expires = 2027-01-01\nuntil = 1\n', "until")]:
        with pytest.raises(SpecError) as raised:
            parse_ignores(tomllib.loads(bad), "dlenv.scan-ignore.toml")
        assert f"ignore[0].{key}" in str(raised.value)
        assert "dlenv.scan-ignore.toml" in str(raised.value)


def old_lock(tmp_path: Path) -> Path:
    """The JupyterLab example's real lock with requests, urllib3 and Pillow set back to
    versions that have advisories (the scan reads names and versions only)."""
    lock = read_lock(FIXTURES / "locks/jupyter-dev.lock")
    back = {"requests": "2.25.1", "urllib3": "1.26.4", "pillow": "9.0.0"}
    wheels = tuple(replace(w, version=back[w.name.lower()], filename=w.filename.replace(
        f"-{w.version}-", f"-{back[w.name.lower()]}-")) if w.name.lower() in back else w
        for w in lock.wheels)
    assert {w.name.lower() for w in wheels} >= {"requests", "urllib3"}
    path = tmp_path / "dlenv.lock"
    write_lock(path, replace(lock, wheels=wheels))
    return path


def test_the_report_in_json_and_sarif_and_the_exit_code(tmp_path):
    lock = old_lock(tmp_path)
    made = scan(str(lock), db=OSV, today=TODAY, security_suite=False)
    assert {(f.id, f.package.shown) for f in made.findings} >= {
        ("GHSA-j8r2-6x86-q33q", "requests"), ("GHSA-v845-jxx5-vc9f", "urllib3")}
    assert made.records == 4 and made.packages > 50
    log = sarif(made.findings, "dlenv.lock", "0")
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {f.id for f in made.findings}
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] ==
               "dlenv.lock" for r in run["results"])

    # a zip of the records (OSV's export form) gives the same
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for record in OSV.glob("*.json"):
            z.write(record, record.name)
    assert scan(str(lock), db=archive, today=TODAY, security_suite=False).findings == \
        made.findings

    r = run_dlenv("scan", str(lock), "--db", str(OSV), "--format", "json", "--fail-on",
                  "medium", "--no-security-suite")
    assert r.returncode == 1, r.stderr
    assert {f["id"] for f in json.loads(r.stdout)["findings"]} == {f.id for f in made.findings}
    quiet = run_dlenv("scan", str(lock), "--db", str(OSV), "--fail-on", "critical",
                      "--no-security-suite", "--format", "sarif")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["version"] == "2.1.0"
    # the ignore file beside the lock is read; an expired entry fails the scan
    (tmp_path / "dlenv.scan-ignore.toml").write_text(IGNORES)
    expired = run_dlenv("scan", str(lock), "--db", str(OSV), "--no-security-suite")
    assert expired.returncode == 1
    assert "the ignore entry for GHSA-3f63-hfp8-52jq expired on 2026-10-01" in expired.stderr
    assert "(ignored)" in expired.stdout
    current = run_dlenv("scan", str(FIXTURES / "locks/jupyter-dev.lock"), "--db", str(OSV),
                        "--no-security-suite", "--fail-on", "low")
    assert current.returncode == 0, current.stdout  # today's pins: none of the four
    assert "no known vulnerabilities" in current.stdout


def test_an_images_debs_are_matched_by_their_source_package_and_its_version():
    from dlenv.audit.diff import Inventory
    from dlenv.workflows.scan import image_packages

    image = Inventory(label="img", kind="image", python_packages=(("requests", "2.25.1"),),
                      debs=(("libc6", "2.36-9+deb12u1"), ("libgcc-s1", "12.2.0-14+b1"),
                            ("mystery", "1.0")),
                      deb_sources=(("libc6", "glibc", "2.36-9+deb12u1"),
                                   ("libgcc-s1", "gcc-12", "12.2.0-14")))
    assert image_packages(image) == [
        Package("PyPI", "requests", "2.25.1", "requests"),
        Package("Debian", "glibc", "2.36-9+deb12u1", "libc6"),
        Package("Debian", "gcc-12", "12.2.0-14", "libgcc-s1"),
        Package("Debian", "mystery", "1.0", "mystery")]


class FakeOsvApi:
    """The OSV API's two calls, on 127.0.0.1, answered from tests/fixtures/osv: querybatch
    names every record that lists the package (one page at a time for requests, to follow
    next_page_token), vulns/ID gives the record."""

    def __init__(self) -> None:
        import http.server
        import threading

        records = {r["id"]: r for r in read_records(OSV)}
        asked: list[dict] = []
        self.asked = asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                queries = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                asked.extend(queries["queries"])
                results = []
                for q in queries["queries"]:
                    hits = sorted(i for i, r in records.items() for a in r["affected"]
                                  if a["package"]["name"].lower() == q["package"]["name"]
                                  and a["package"]["ecosystem"] == q["package"]["ecosystem"])
                    if q["package"]["name"] == "requests" and "page_token" not in q:
                        results.append({"vulns": [], "next_page_token": "page-2"})
                    else:
                        results.append({"vulns": [{"id": i} for i in hits]})
                self._send(200, {"results": results})

            def do_GET(self):
                ident = self.path.rsplit("/", 1)[1]
                self._send(200, records[ident]) if ident in records else self._send(404, {})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_osv_api_gives_what_the_offline_records_give(tmp_path):
    lock = old_lock(tmp_path)
    offline = scan(str(lock), db=OSV, today=TODAY, security_suite=False)
    api = FakeOsvApi()
    try:
        online = scan(str(lock), db=None, osv_url=api.url, today=TODAY, security_suite=False)
        assert online.findings == offline.findings and online.findings
        assert online.records == 3  # requests, urllib3, glibc: not Pillow, which is not locked
        asked = {(q["package"]["ecosystem"], q["package"]["name"]) for q in api.asked}
        assert ("PyPI", "requests") in asked and ("Debian:12", "glibc") in asked
        assert any(q.get("page_token") == "page-2" for q in api.asked)
        r = run_dlenv("scan", str(lock), "--format", "json", "--no-security-suite",
                      env={"DLENV_OSV_URL": api.url})
        assert r.returncode == 0, r.stderr
        assert {f["id"] for f in json.loads(r.stdout)["findings"]} == \
            {f.id for f in offline.findings}
    finally:
        api.close()
    from dlenv.errors import FetchError

    with pytest.raises(FetchError, match="cannot be reached") as gone:
        scan(str(lock), db=None, osv_url=api.url, today=TODAY, security_suite=False)
    assert "--db" in gone.value.fix

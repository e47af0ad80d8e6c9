"""What the tests run is what `threetier up` uploads: application_files()."""
from __future__ import annotations

import datetime
import hashlib
import json
import re

import pytest
from cryptography import x509

from threetier.artifacts import BUNDLED_APPLICATION, application_files

WEB_DIST = BUNDLED_APPLICATION / "web-tier" / "dist"


def test_the_app_tier_is_its_sources_with_the_lockfile():
    files = application_files()
    assert {key.split("/")[0] for key in files} == {"app-tier", "web-tier"}
    manifest = json.loads(files["app-tier/package.json"])
    lock = json.loads(files["app-tier/package-lock.json"])
    assert manifest["engines"]["node"]
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"], "lockfile matches package.json"
    assert "app-tier/src/server.js" in files
    assert not [key for key in files if "/node_modules/" in key]
    assert list(files) == sorted(files)


def test_the_web_tier_is_the_built_bundle_only():
    """web-tier/ in the bucket is what nginx serves, nothing else: the builder copies it as it
    is, and the web image's fingerprint moves only when these bytes do."""
    web = {key: content for key, content in application_files().items() if key.startswith("web-tier/")}
    on_disk = {f"web-tier/{p.relative_to(WEB_DIST).as_posix()}" for p in WEB_DIST.rglob("*") if p.is_file()}
    assert set(web) == on_disk
    assert "web-tier/index.html" in web
    assert not [key for key in web if re.search(r"/(src|dist|node_modules)/|package(-lock)?\.json$|\.jsx$", key)]
    index = web["web-tier/index.html"].decode()
    assert '<div id="root">' in index and "/src/main.jsx" not in index, "the built index.html, not the source"
    referenced = set(re.findall(r'(?:src|href)="/(assets/[^"]+)"', index))
    assert referenced and {f"web-tier/{path}" for path in referenced} == {k for k in web if "/assets/" in k}, \
        "index.html references exactly the uploaded assets"


def test_bytes_are_the_files_on_disk():
    for key, content in application_files().items():
        tier, rest = key.split("/", 1)
        path = WEB_DIST / rest if tier == "web-tier" else BUNDLED_APPLICATION / key
        assert path.read_bytes() == content


def test_application_tree_is_built_from_those_bytes(application_tree):
    """The app tier and the web bundle the other tests run come from this tree."""
    for key, content in application_files().items():
        assert (application_tree / key).read_bytes() == content
    on_disk = {p.relative_to(application_tree).as_posix() for p in application_tree.rglob("*")
               if p.is_file() and "node_modules" not in p.parts}
    assert on_disk == set(application_files())


def test_a_users_own_application_folder(tmp_path):
    (tmp_path / "app-tier" / "src").mkdir(parents=True)
    (tmp_path / "app-tier" / "src" / "server.js").write_text("// mine")
    (tmp_path / "app-tier" / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "app-tier" / "node_modules" / "x" / "index.js").write_text("")
    (tmp_path / "elsewhere.txt").write_text("not uploaded")
    assert application_files(tmp_path) == {"app-tier/src/server.js": b"// mine"}

    web = tmp_path / "web-tier"
    (web / "src").mkdir(parents=True)
    (web / "src" / "main.jsx").write_text("// source, not uploaded")
    (web / "package.json").write_text("{}")
    with pytest.raises(ValueError, match="npm run build"):
        application_files(tmp_path)  # a web tier that was never built cannot be served
    (web / "dist" / "assets").mkdir(parents=True)
    (web / "dist" / "index.html").write_text("<div id=\"root\"></div>")
    (web / "dist" / "assets" / "app-1.js").write_text("built")
    assert application_files(tmp_path) == {
        "app-tier/src/server.js": b"// mine",
        "web-tier/assets/app-1.js": b"built",
        "web-tier/index.html": b'<div id="root"></div>',
    }


RDS_BUNDLE_KEY = "app-tier/certs/rds-global-bundle.pem"
# https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, as app-tier/certs/README.md says.
RDS_BUNDLE_SHA256 = "e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3"


def test_the_rds_ca_bundle_ships_with_the_app():
    """The CAs the app verifies Aurora's certificate against are uploaded with its sources (the
    builder downloads nothing for them): Amazon RDS's global bundle, every certificate a valid,
    unexpired, self-signed RDS root, among them the default CA of new clusters."""
    files = application_files()
    assert RDS_BUNDLE_KEY in files, "the app's TLS to the database needs its CA bundle"
    bundle = files[RDS_BUNDLE_KEY]
    assert hashlib.sha256(bundle).hexdigest() == RDS_BUNDLE_SHA256
    certificates = x509.load_pem_x509_certificates(bundle)
    assert len(certificates) == 108
    now = datetime.datetime.now(datetime.timezone.utc)
    names = set()
    for cert in certificates:
        subject = cert.subject.rfc4514_string()
        assert cert.issuer == cert.subject, subject
        cert.verify_directly_issued_by(cert)  # the signature is the key's own: a root, intact
        assert cert.not_valid_before_utc < now < cert.not_valid_after_utc, subject
        assert "OU=Amazon RDS" in subject and "O=Amazon Web Services\\, Inc." in subject, subject
        names.add(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names  # rds-ca-rsa2048-g1, the default
    assert all(re.fullmatch(r"Amazon RDS (Beta |Preview )?[a-z]+-[a-z]+-\d Root CA (RSA2048|RSA4096|ECC384) G1", n)
               for n in names), sorted(names)

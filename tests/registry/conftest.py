"""Fixtures of the shipping area: a real registry holding the catalog artifact, the images."""
import subprocess

import pytest

from harness import ROOT
from registry_util import CATALOG, Registry, TokenServer


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A registry as `make registry-up` makes it (TLS, htpasswd), holding the committed catalog
    as <prefix>/catalog:v1; down (state removed) even on failure."""
    r = Registry(tmp_path_factory.mktemp("registry") / "state")
    try:
        r.start()
        r.catalog_ref = r.push_catalog(CATALOG, "v1")
        yield r
    finally:
        r.down()


@pytest.fixture
def own_registry(tmp_path):
    """A registry for one test, which it may stop and start; down even on failure."""
    r = Registry(tmp_path / "registry")
    try:
        yield r
    finally:
        r.down()


@pytest.fixture
def token_registry(tmp_path):
    """A registry in Bearer-token mode behind a token server; holds the catalog as catalog:v1."""
    # The registry's own password is made at its first start; the token server checks the same.
    r = Registry(tmp_path / "registry")
    r.start()
    user, password = r.vars["REGISTRY_USER"], r.vars["REGISTRY_PASSWORD"]
    r.catalog_ref = r.push_catalog(CATALOG, "v1")   # pushed while it still takes Basic
    r.stop()
    tokens = TokenServer(tmp_path, user, password).start()
    r.env_base.update(SP_REGISTRY_AUTH="token", SP_REGISTRY_TOKEN_REALM=tokens.realm,
                      SP_REGISTRY_TOKEN_CERT=str(tokens.cert_path))
    try:
        r.start()
        r.tokens = tokens
        yield r
    finally:
        r.down()
        tokens.stop()


@pytest.fixture(scope="session")
def images():
    """`make images`' images (built once; a build with unchanged inputs is skipped)."""
    subprocess.run([str(ROOT / "scripts" / "images.sh"), "build"], check=True,
                   stdout=subprocess.DEVNULL)
    names = subprocess.run([str(ROOT / "scripts" / "images.sh"), "list"], check=True,
                           capture_output=True, text=True).stdout.split()
    return {n: subprocess.run([str(ROOT / "scripts" / "images.sh"), "ref", n], check=True,
                              capture_output=True, text=True).stdout.strip() for n in names}

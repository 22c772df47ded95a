"""Issue 10: `make run` with CATALOG_ARTIFACT set. The local stack (scripts/local.sh) and Locust
both read the catalog from the registry; Locust mixes in sales of unknown products and wrong
categories, which the api refuses with 400 and which are never counted; every 2xx is counted
exactly once."""
import os
import sys

import pytest

from harness import ROOT

sys.path.insert(0, str(ROOT / "tests" / "local"))
from test_local_stack import Stack, kafka_sale_ids, run_locust, running, wait_counted  # noqa: E402

SECONDS = int(os.environ.get("SP_TEST_LOCUST_SECONDS", "20"))


@pytest.fixture
def catalog_stack(tmp_path, registry):
    s = Stack(tmp_path / "local")
    s.env.update(registry.client_env(), CATALOG_ARTIFACT=registry.catalog_ref)
    with running(s):
        yield s


def catalog_pulls(registry, user_agent):
    """Successful manifest GETs of the catalog in the registry's access log, by user agent."""
    log = (registry.dir / "registry.log").read_text(errors="replace")
    return sum(1 for line in log.splitlines()
               if "GET /v2/blackfriday/catalog/manifests/" in line and '" 200 ' in line
               and line.rsplit('"', 2)[-2].startswith(user_agent))


def test_locust_and_api_read_the_catalog_from_the_registry(catalog_stack, tmp_path, registry):
    from harness import http_get
    api_url = catalog_stack.vars()["API_URL"]
    loaded = [l for l in (catalog_stack.dir / "api.log").read_text().splitlines() if "catalog_loaded" in l]
    assert loaded and "300 products" in loaded[0]

    api_pulls, locust_pulls = catalog_pulls(registry, "salespipeline-oci/"), catalog_pulls(registry, "salespipeline-locust")
    assert api_pulls >= 1
    counts, ids = run_locust(catalog_stack, tmp_path, SECONDS, invalid_share=0.3)
    assert catalog_pulls(registry, "salespipeline-locust") == locust_pulls + 1
    assert counts["accepted"] > 100, counts
    assert counts["rejected_invalid"] > 0 and counts["invalid_accepted"] == 0, counts
    assert counts["other"] == 0, counts
    metrics = http_get(f"{api_url}/metrics")[1]
    refused = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.splitlines() if line.startswith("sp_catalog_refused_total{")}
    assert refused['field="producto_id"'] > 0 and refused['field="categoria"'] > 0, refused

    dash = wait_counted(catalog_stack, counts["accepted"])
    assert sorted(kafka_sale_ids(catalog_stack)) == sorted(ids)
    dash = catalog_stack.dashboard()
    assert dash["total_sales"] == counts["accepted"]
    # No refused product ever reached the aggregates.
    import valkey
    client = valkey.Valkey.from_url(catalog_stack.vars()["VALKEY_URL"], decode_responses=True)
    products = client.zrange("sp:units", 0, -1)
    assert products and not any(p.startswith("ZZZ-") for p in products)

from tests.test_publish import *  # noqa
from tests.test_publish import FakeHub, SECRET

def test_probe(copy, hub):
    plan = plan_upload(copy, "org/name", tag="v1", large_bytes=1000)
    print(plan.method)
    execute_plan(HfApi(endpoint="https://hub.test", token=SECRET), plan, echo=print)
    for r in hub.requests: print(r[:2])
    print(len(hub.commits), sorted(hub.files)[:5])

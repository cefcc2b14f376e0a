"""Suite-wide: every async test runs on asyncio and on trio, and no test writes to the
user's own run store: runs are recorded (the store is on, as it is by default) in a file
of this session's temporary directory."""

import os
import tempfile

import plait
import pytest

# pytester's inline runs put sys.modules back as they found it: a module of plait first
# imported inside one would be imported afresh after it, its classes beside those plait's
# lazy namespace had already handed out. So the suite loads the namespace whole, first.
for _name in plait.__all__:
    getattr(plait, _name)

_STORE_DIR = tempfile.TemporaryDirectory(prefix="plait-test-store-")
os.environ["PLAIT_STORE"] = os.path.join(_STORE_DIR.name, "runs.db")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)

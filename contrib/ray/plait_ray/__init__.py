"""plait-ray: run plait fan-outs on a Ray cluster.

``ctx.map(fn, items, executor="ray")``, ``plait.FanOut(..., executor="ray")`` or
``plait.Runtime(executor="ray")``; see docs/plugins/ray.md. Importing this package does
not import Ray: the first Ray fan-out does.
"""

from ._errors import NotPicklable, RayTaskFailed
from .plugin import ray_executor

__all__ = ["NotPicklable", "RayTaskFailed", "ray_executor"]

"""``plait demo``: the seeds' three worked examples, runnable on any model.

Each demo module defines ``async def main(session, **options)``, and ``fake_reply(request)`` with
``FAKE_LATENCY``: the scripted model that ``--model fake:...`` (plait-testing's fake
provider) answers with, including the kind of mistakes small models make, so a test can
watch validation and retries catch them. ``plait._cli.demo`` runs one.
"""

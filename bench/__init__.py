"""`make bench`: the console's speed beside its stack's floor, measured in one run (see docs/performance.md).

Bench-only code: nothing here is imported by the product. `bench.settings` (the production
settings plus the `bench` app and `bench.urls`) is what the benchmark's gunicorn serves.
"""

"""The locust user of benchmarks/serve.py: one shopper posting pre-built request bodies.

Configured by the environment (benchmarks/serve.py sets it): SERVE_BENCH_BODIES (a JSON file, a
list of request bodies), SERVE_BENCH_PATH (``/recommend`` or ``/invocations``) and
SERVE_BENCH_RATE (requests per second per simulated user, with exponential think times: many
such users add up to about Poisson arrivals at users x rate, as independent shoppers do; 0: back
to back, a closed loop).
"""

import json
import os
import random

from locust import FastHttpUser, between, task

with open(os.environ["SERVE_BENCH_BODIES"]) as f:
    BODIES = [json.dumps(body) for body in json.load(f)]
PATH = os.environ["SERVE_BENCH_PATH"]
RATE = float(os.environ.get("SERVE_BENCH_RATE", "0"))
HEADERS = {"content-type": "application/json"}


def think(user: "Shopper") -> float:
    return random.expovariate(RATE)


class Shopper(FastHttpUser):
    wait_time = think if RATE > 0 else between(0, 0)

    @task
    def ask(self) -> None:
        with self.client.post(PATH, data=random.choice(BODIES), headers=HEADERS, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}: {answer.text[:200]}")
